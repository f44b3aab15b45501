// go-echo: the echo protocol served the way a Go programmer would write it,
// with the usual graceful-shutdown recipe. A peer for quiesce's benchmarks
// (bench/peers/README.md).
//
//   - net.Listen, an accept loop that ends quietly on net.ErrClosed and backs
//     off (5 ms doubling to 1 s) on temporary errors such as EMFILE;
//   - one goroutine per connection: Read into a 16 KiB buffer (reused), Write
//     exactly what was read, Read again;
//   - a tracked set of connections (mutex + map) so that the stop can act on
//     them;
//   - SIGTERM/SIGINT: close the listener, wake every reader with
//     SetReadDeadline(now). A handler echoes what it has read, and the bytes
//     the kernel held unread at the stop, then sends FIN (CloseWrite). It is
//     then drained. It reads and discards until the peer's FIN (at most 1 s
//     without input) so that a client still sending gets no reset, and
//     closes. The stop waits for every handler until --drain-timeout;
//     then, or on a second signal, it closes the rest by force.
//
// Exit codes: 0 every connection drained, 3 some closed by force, 1 start-up
// error, 2 bad option.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const (
	bufSize = 16 * 1024       // as quiesce's reads (receive_policy::at_most(16 KiB))
	linger  = 1 * time.Second // as quiesce's linger after its FIN
)

type conn struct {
	c       *net.TCPConn
	drained bool // FIN sent after everything owed; guarded by server.mu
}

type server struct {
	mu       sync.Mutex
	conns    map[*conn]struct{}
	stopping bool
	stopAt   time.Time // drain deadline, set at the stop
	owed     sync.WaitGroup
	alive    sync.WaitGroup
}

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("go-echo", flag.ContinueOnError)
	host := fs.String("host", "127.0.0.1", "listening address")
	port := fs.Int("port", 8080, "listening port; 0 picks a free port")
	drain := fs.Duration("drain-timeout", 10*time.Second,
		"how long connections may take to drain after a stop")
	protocol := fs.String("protocol", "echo", "only echo (accepted for bench/stop_time)")
	fs.String("log-level", "warning", "ignored (accepted for bench/stop_time)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "go-echo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *protocol != "echo" {
		fmt.Fprintf(os.Stderr, "go-echo: bad --protocol=%s: only echo\n", *protocol)
		return 2
	}
	if *port < 0 || *port > 65535 {
		fmt.Fprintf(os.Stderr, "go-echo: bad --port=%d\n", *port)
		return 2
	}
	if *drain < 0 {
		fmt.Fprintf(os.Stderr, "go-echo: bad --drain-timeout=%v: negative\n", *drain)
		return 2
	}
	raiseFileLimit()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-echo: cannot listen on %s: %v\n", addr, err)
		return 1
	}
	actual := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(os.Stdout, "listening on %s\n",
		net.JoinHostPort(*host, strconv.Itoa(actual)))
	os.Stdout.Sync()

	s := &server{conns: make(map[*conn]struct{})}
	quit := make(chan struct{})
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		s.acceptLoop(ln, quit)
	}()

	<-sigs
	// 1. No new connections; the accept loop ends on net.ErrClosed.
	close(quit)
	ln.Close()
	<-accepting
	// 2. Wake every reader: idle connections close, busy ones finish.
	deadline := time.Now().Add(*drain)
	s.mu.Lock()
	s.stopping = true
	s.stopAt = deadline
	now := time.Now()
	for c := range s.conns {
		c.c.SetReadDeadline(now)
	}
	s.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	owed := make(chan struct{})
	go func() { s.owed.Wait(); close(owed) }()
	select {
	case <-owed:
	case <-timer.C:
		return s.force()
	case <-sigs:
		return s.force()
	}
	// Every connection has its FIN; wait for the clients' FINs (the linger)
	// within the same deadline. Ending a linger early is not a forced close.
	gone := make(chan struct{})
	go func() { s.alive.Wait(); close(gone) }()
	select {
	case <-gone:
	case <-timer.C:
		s.force()
	case <-sigs:
		s.force()
	}
	return 0
}

func (s *server) acceptLoop(ln net.Listener, quit <-chan struct{}) {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Temporary() { //nolint:staticcheck // as net/http does
				if backoff == 0 {
					backoff = 5 * time.Millisecond
					fmt.Fprintf(os.Stderr, "go-echo: accept: %v; retrying\n", err)
				} else if backoff *= 2; backoff > time.Second {
					backoff = time.Second
				}
				select {
				case <-time.After(backoff):
				case <-quit:
					return
				}
				continue
			}
			fmt.Fprintf(os.Stderr, "go-echo: accept: %v\n", err)
			return
		}
		backoff = 0
		c := &conn{c: nc.(*net.TCPConn)}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.owed.Add(1)
		s.alive.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// serve echoes until the peer closes, an error, or the stop.
func (s *server) serve(c *conn) {
	defer s.finish(c)
	buf := make([]byte, bufSize)
	for {
		n, err := c.c.Read(buf)
		if n > 0 {
			if _, werr := c.c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && s.isStopping() {
			break
		}
		// io.EOF: the peer's FIN, everything echoed; the close sends ours.
		// Anything else (a reset): nothing more to do.
		return
	}
	// The stop. Bytes the client sent before it may still wait in the
	// kernel: echo them too, then FIN.
	s.mu.Lock()
	stopAt := s.stopAt
	s.mu.Unlock()
	for pending := unread(c.c); pending > 0; {
		c.c.SetReadDeadline(stopAt)
		n, err := c.c.Read(buf[:min(pending, len(buf))])
		if n > 0 {
			if _, werr := c.c.Write(buf[:n]); werr != nil {
				return
			}
			pending -= n
		}
		if err != nil {
			return
		}
	}
	if c.c.CloseWrite() != nil {
		return
	}
	s.drained(c)
	// Linger: discard input until the peer's FIN, at most `linger` without
	// input, so that a client still sending does not get a reset.
	for {
		c.c.SetReadDeadline(time.Now().Add(linger))
		if _, err := c.c.Read(buf); err != nil {
			return
		}
	}
}

func (s *server) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

func (s *server) drained(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.drained {
		c.drained = true
		s.owed.Done()
	}
}

func (s *server) finish(c *conn) {
	c.c.Close()
	s.drained(c) // closed before the stop, or failed: nothing owed any more
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.alive.Done()
}

// force closes every connection left and returns the exit code: 3 if one of
// them still owed bytes.
func (s *server) force() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := 0
	for c := range s.conns {
		if !c.drained {
			code = 3
		}
		c.c.Close()
	}
	return code
}

// unread returns how many bytes the kernel holds unread for c (FIONREAD).
func unread(c *net.TCPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) {
		v, err := ioctlInt(int(fd), syscall.TIOCINQ)
		if err == nil {
			n = v
		}
	})
	return n
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Fprintf(os.Stderr, "go-echo: setrlimit(RLIMIT_NOFILE): %v\n", err)
		}
	}
}

func ioctlInt(fd int, req uintptr) (int, error) {
	var v int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req,
		uintptr(unsafe.Pointer(&v)))
	if errno != 0 {
		return 0, errno
	}
	return int(v), nil
}
