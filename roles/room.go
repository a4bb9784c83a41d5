package roles

import "fmt"

// RoomError refuses an upload while the disk that holds staged images has
// less room than it keeps free. The room is for save2db: staged bytes
// leave the disk only once the store holds them, and when the store is on
// the same disk, a disk that uploads filled to the last byte would leave it
// no room to write them, and nothing would move until someone freed space.
type RoomError struct {
	Dir       string // whose file system is short of room
	Free, Min int64  // bytes free, and the least kept free
	Setting   string // the setting that holds Min, for the message
}

func (e *RoomError) Error() string {
	return fmt.Sprintf("the disk of %s has %s free, less than the %s (%s) kept for moving accepted images into the store: uploads resume once there is room",
		e.Dir, mib(e.Free), mib(e.Min), e.Setting)
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// CheckRoom reports whether this process may take uploads now: nil, or a
// *RoomError. It is cheap (Deps.Room reads the disk at most once a second).
func (a *API) CheckRoom() error {
	if a.deps.Room == nil {
		return nil
	}
	return a.deps.Room()
}
