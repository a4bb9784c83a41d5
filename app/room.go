package app

import (
	"sync"
	"time"

	"github.com/imgpipe/imgpipe/internal/diskspace"
	"github.com/imgpipe/imgpipe/roles"
)

// diskRoom keeps uploads off the last bytes of the data dir's disk (see
// roles.RoomError): `imgpipe dev` stages uploads there, in the embedded
// NATS server's files, and save2db moves them into the local store on the
// same disk. The disk is read at most once a second, a statfs that would
// otherwise be made for every upload; the uploads on their way count as
// written already. It is a soft floor: the disk may fill all the same
// within a second of a reading, or by another program's writes.
type diskRoom struct {
	dir string
	min int64

	mu      sync.Mutex
	checked time.Time
	free    int64 // at the last reading; -1 if unreadable
}

// roomEvery is how long a reading of the disk's free space is used.
const roomEvery = time.Second

func (r *diskRoom) check(pending int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= roomEvery {
		r.checked = time.Now()
		if free, err := diskspace.Free(r.dir); err == nil {
			r.free = free
		} else {
			r.free = -1
		}
	}
	if r.free < 0 {
		return nil // unreadable: the writes themselves will say
	}
	if left := r.free - pending; left < r.min {
		return &roles.RoomError{Free: max(left, 0), Min: r.min, Setting: "data_dir_min_free_bytes"}
	}
	return nil
}
