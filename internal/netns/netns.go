//go:build linux

// Package netns builds throwaway Linux network namespaces for tests: hosts
// joined by veth pairs to bridges that live in a "switch" namespace of their
// own, so that nothing in the root namespace (its interfaces, addresses and
// routes) is touched. It runs code inside a namespace from a locked OS
// thread (Do), so a process forked there, or a socket opened there, belongs
// to that namespace. It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and
// iproute2's ip.
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotPermitted is returned when this process cannot make namespaces.
var ErrNotPermitted = errors.New("netns: making network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2's ip")

// Prefix starts the name of every namespace this package makes:
// Prefix-PID-RANDOM-HOST. The pid lets Sweep tell leftovers of a dead test
// process from the namespaces of a running one.
const Prefix = "amaretti-e2e-"

// nameRE matches the names this package makes.
var nameRE = regexp.MustCompile(`^` + regexp.QuoteMeta(Prefix) + `([0-9]+)-([0-9a-f]{8})-([a-z0-9]+)$`)

// NS is a named network namespace (in /run/netns, as ip netns makes them).
type NS struct {
	// Name is its name for ip netns.
	Name string
}

// Do runs fn on an OS thread that is inside the namespace, and returns
// what fn returns. A process fn forks, or a socket fn opens, belongs to the
// namespace. The thread goes back to the root namespace afterwards; if it
// cannot, it is discarded (its goroutine exits locked).
func (n NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: %w", err)
			return
		}
		defer self.Close()
		target, err := os.Open("/run/netns/" + n.Name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: namespace %s: %w", n.Name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: entering %s: %w (%w)", n.Name, err, ErrNotPermitted)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it ends with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("netns: leaving %s: %w", n.Name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// DialContext opens a connection from inside the namespace.
func (n NS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens on addr inside the namespace.
func (n NS) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// Start starts cmd inside the namespace.
func (n NS) Start(cmd *exec.Cmd) error { return n.Do(cmd.Start) }

// Run runs cmd inside the namespace and waits for it.
func (n NS) Run(cmd *exec.Cmd) error {
	if err := n.Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// ip runs iproute2's ip with args and returns its error with its output.
func ip(args ...string) error {
	cmd := exec.Command("ip", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Check reports whether this process can make namespaces, with what is
// missing.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: running as uid %d, not root", ErrNotPermitted, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: %v (Debian package iproute2)", ErrNotPermitted, err)
	}
	return nil
}

// A Net is one subnet: a bridge in the switch namespace.
type Net struct {
	// Name names the bridge and, inside each host, its interface (Name+"0").
	Name string
	// CIDR is the subnet, such as 10.213.1.0/24.
	CIDR string
}

// A Host is a namespace with one interface on each of its nets.
type Host struct {
	NS
	// Short is the host's name in the topology ("pg", "v1").
	Short string
	// Addrs maps a net's name to the host's address on it.
	Addrs map[string]string
}

// Addr returns the host's address on net, or panics for a net it is not on
// (a mistake in the test's topology).
func (h *Host) Addr(net string) string {
	a, ok := h.Addrs[net]
	if !ok {
		panic("netns: host " + h.Short + " is not on net " + net)
	}
	return a
}

// Topology is a switch namespace with one bridge per net, and hosts.
type Topology struct {
	// ID is the PID-RANDOM part of every name.
	ID string
	// Switch holds the bridges and the switch side of every veth pair.
	Switch NS
	// Hosts by short name.
	Hosts map[string]*Host

	names []string // every namespace made, the switch first
}

// HostSpec says which nets a host joins and with which address.
type HostSpec struct {
	// Name is the host's short name: lower-case letters and digits, at most
	// 6 characters (interface names are at most 15).
	Name string
	// Addrs maps a net's name to the host's address on it (without /len).
	Addrs map[string]string
}

// New makes the topology: the switch namespace with a bridge per net, a
// namespace per host with lo up and an interface on each of its nets. On an
// error it removes what it made. Call Close to remove it all.
func New(nets []Net, hosts []HostSpec) (*Topology, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	t := &Topology{ID: strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(rnd[:]), Hosts: map[string]*Host{}}
	if err := t.build(nets, hosts); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

func (t *Topology) add(short string) (NS, error) {
	n := NS{Name: Prefix + t.ID + "-" + short}
	if err := ip("netns", "add", n.Name); err != nil {
		return n, fmt.Errorf("%w (%w)", err, ErrNotPermitted)
	}
	t.names = append(t.names, n.Name)
	return n, ip("-n", n.Name, "link", "set", "lo", "up")
}

func (t *Topology) build(nets []Net, hosts []HostSpec) error {
	var err error
	if t.Switch, err = t.add("sw"); err != nil {
		return err
	}
	prefix := map[string]string{}
	for _, nt := range nets {
		_, ipnet, err := net.ParseCIDR(nt.CIDR)
		if err != nil {
			return fmt.Errorf("netns: net %s: %w", nt.Name, err)
		}
		ones, _ := ipnet.Mask.Size()
		prefix[nt.Name] = strconv.Itoa(ones)
		if err := ip("-n", t.Switch.Name, "link", "add", "br-"+nt.Name, "type", "bridge"); err != nil {
			return err
		}
		if err := ip("-n", t.Switch.Name, "link", "set", "br-"+nt.Name, "up"); err != nil {
			return err
		}
	}
	for _, hs := range hosts {
		if len(hs.Name) > 6 {
			return fmt.Errorf("netns: host name %q longer than 6", hs.Name)
		}
		ns, err := t.add(hs.Name)
		if err != nil {
			return err
		}
		h := &Host{NS: ns, Short: hs.Name, Addrs: map[string]string{}}
		t.Hosts[hs.Name] = h
		for netName, addr := range hs.Addrs {
			plen, ok := prefix[netName]
			if !ok {
				return fmt.Errorf("netns: host %s on unknown net %s", hs.Name, netName)
			}
			// Both ends are made in the switch namespace and the host's
			// end moved at once: the root namespace never sees them.
			swEnd, hostEnd := t.port(hs.Name, netName), netName+"0"
			if err := ip("-n", t.Switch.Name, "link", "add", swEnd, "type", "veth", "peer", "name", hostEnd, "netns", ns.Name); err != nil {
				return err
			}
			if err := ip("-n", t.Switch.Name, "link", "set", swEnd, "master", "br-"+netName, "up"); err != nil {
				return err
			}
			if err := ip("-n", ns.Name, "addr", "add", addr+"/"+plen, "dev", hostEnd); err != nil {
				return err
			}
			if err := ip("-n", ns.Name, "link", "set", hostEnd, "up"); err != nil {
				return err
			}
			h.Addrs[netName] = addr
		}
	}
	return nil
}

// port is the switch-side name of host's veth on net.
func (t *Topology) port(host, net string) string { return host + "-" + net }

// SetLink sets the switch side of host's cable to net up or down: down, the
// host's interface loses its carrier and no packet passes either way, as
// with a pulled cable; the host's other nets are untouched.
func (t *Topology) SetLink(host, net string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return ip("-n", t.Switch.Name, "link", "set", t.port(host, net), state)
}

// Close kills every process left in the topology's namespaces and deletes
// them (the veth pairs and bridges go with them).
func (t *Topology) Close() error {
	var errs []error
	for i := len(t.names) - 1; i >= 0; i-- {
		errs = append(errs, remove(t.names[i]))
	}
	t.names = nil
	return errors.Join(errs...)
}

// remove kills the processes inside namespace name and deletes it.
func remove(name string) error {
	if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if _, err := os.Stat("/run/netns/" + name); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return ip("netns", "delete", name)
}

// Sweep removes the namespaces (and kills their processes) that this
// package made for a process that no longer runs — leftovers of a test
// killed before it could clean up — and, when all is true, those of this
// process too. It returns the names it removed.
func Sweep(all bool) ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		m := nameRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		mine := pid == os.Getpid()
		if mine && !all {
			continue
		}
		if !mine && syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // another live test process's
		}
		if err := remove(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}
