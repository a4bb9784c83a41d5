// Package diskspace reads the size of the file system under a directory
// and the room left on it, for the checks that keep the data dir's disk
// from filling up.
package diskspace

import "syscall"

// Size is the size in bytes of dir's file system.
func Size(dir string) (int64, error) {
	st, err := statfs(dir)
	if err != nil {
		return 0, err
	}
	return int64(st.Blocks) * unit(st), nil
}

// Free is the room left in dir's file system for a process that is not
// root: Bavail, not Bfree, which counts the share kept for root.
func Free(dir string) (int64, error) {
	st, err := statfs(dir)
	if err != nil {
		return 0, err
	}
	return int64(st.Bavail) * unit(st), nil
}

func statfs(dir string) (*syscall.Statfs_t, error) {
	var st syscall.Statfs_t
	err := syscall.Statfs(dir, &st)
	return &st, err
}

// unit is what the block counts count: the fragment size (statfs(2)), not
// the "optimal transfer size" Bsize, which NFS and FUSE may set otherwise
// (to a megabyte, say); 0 in Frsize is taken as Bsize, as on old kernels.
func unit(st *syscall.Statfs_t) int64 {
	if st.Frsize > 0 {
		return st.Frsize
	}
	return st.Bsize
}
