package main

import "syscall"

// childAttr makes the kernel send SIGTERM to amarettid when the thread that
// started it ends, so it never outlives the frontend, even one killed with
// SIGKILL. startDaemon keeps that thread for as long as the child runs.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
