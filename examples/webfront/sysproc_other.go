//go:build !linux

package main

import "syscall"

// childAttr: only Linux has a parent-death signal; elsewhere amarettid is
// stopped by the frontend's normal shutdown path only.
func childAttr() *syscall.SysProcAttr { return nil }
