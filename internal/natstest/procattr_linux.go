package natstest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill cmd's process when the test binary
// dies: a timeout's panic or a kill skips t.Cleanup, and a server left
// running would hold its ports and CPU on the machine for good. (The
// signal comes when the OS thread that started the process exits; Go
// keeps its threads for the life of the program.)
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
