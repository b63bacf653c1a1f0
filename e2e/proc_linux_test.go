//go:build linux

package e2e

import (
	"os/exec"
	"syscall"
)

// ownGroup runs cmd in a process group of its own, killed if the test process dies, so that a
// cancelled run ends with SIGTERM to the whole group (node and what it started; playwright closes
// Chromium on SIGTERM) before the SIGKILL that exec.Cmd's WaitDelay sends.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
}

// terminate asks a process to stop as an operator would.
func terminate(cmd *exec.Cmd) error { return cmd.Process.Signal(syscall.SIGTERM) }
