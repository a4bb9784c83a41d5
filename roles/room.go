package roles

import "fmt"

// RoomError refuses an upload while the disk that holds staged images has
// less room than it keeps free. The room is for what was accepted to move
// on: staged bytes leave the disk only once the store holds them, and
// when the store is on the same disk, a disk that uploads filled to the
// last byte would leave it no room to write them, and nothing would move
// until someone freed space.
type RoomError struct {
	Free    int64  // bytes free, less the uploads this process is taking
	Min     int64  // the least kept free
	Setting string // the setting that holds Min, for the message
}

func (e *RoomError) Error() string {
	return fmt.Sprintf("the data dir's disk has %s free, counting the uploads in progress, less than the %s (%s) kept for what was accepted to be staged and stored: uploads resume once there is room",
		mib(e.Free), mib(e.Min), e.Setting)
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// CheckRoom reports whether this process may take an upload now, pending
// bytes of uploads being on their way to the disk (those it is reading,
// this one's declared length): nil, or a *RoomError. It is cheap:
// Deps.Room reads the disk at most once a second.
func (a *API) CheckRoom(pending int64) error {
	if a.deps.Room == nil {
		return nil
	}
	return a.deps.Room(pending)
}
