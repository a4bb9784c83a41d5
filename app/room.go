package app

import (
	"sync"
	"syscall"
	"time"

	"github.com/imgpipe/imgpipe/roles"
)

// diskRoom keeps uploads off the last bytes of the data dir's disk (see
// roles.RoomError): `imgpipe dev` stages uploads there, in the embedded
// NATS server's files, and save2db moves them into the local store on the
// same disk. The disk is read at most once a second: a check is a statfs,
// made for every upload otherwise.
type diskRoom struct {
	dir string
	min int64

	mu      sync.Mutex
	checked time.Time
	err     error
}

// roomEvery is how long a reading of the disk's free space is used.
const roomEvery = time.Second

func (r *diskRoom) check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < roomEvery {
		return r.err
	}
	r.checked, r.err = time.Now(), nil
	var st syscall.Statfs_t
	if err := syscall.Statfs(r.dir, &st); err != nil {
		return nil // unreadable: the writes themselves will say
	}
	// Bavail, not Bfree: the blocks the root-reserved share leaves to us.
	if free := int64(st.Bavail) * int64(st.Bsize); free < r.min {
		r.err = &roles.RoomError{Dir: r.dir, Free: free, Min: r.min, Setting: "data_dir_min_free_bytes"}
	}
	return r.err
}
