// go-http: Go's net/http server with the documented graceful stop,
// Server.Shutdown(ctx). A peer for quiesce's benchmarks
// (bench/peers/README.md).
//
// GET / (and HEAD /) answers 200 with quiesce's body, "quiesce: hello\n",
// Content-Type text/plain and an explicit "Connection: keep-alive": the same
// header fields as quiesce (Date, Content-Type, Content-Length, Connection),
// so the bytes on the wire match. net/http turns that header into
// "Connection: close" by itself when the connection ends after the response
// (client asked for close, or a stop is under way). Other paths: 404.
//
// SIGTERM/SIGINT: Shutdown with a --drain-timeout context (closes the
// listener, then idle connections; waits for active ones). At the deadline,
// or on a second signal, Close() and exit 3.
//
// Exit codes: 0 every connection drained, 3 some closed by force, 1 start-up
// error, 2 bad option.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

var body = []byte("quiesce: hello\n") // actors/behaviours/http.cpp, GET /

func root(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Connection"] = []string{"keep-alive"}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("go-http", flag.ContinueOnError)
	host := fs.String("host", "127.0.0.1", "listening address")
	port := fs.Int("port", 8080, "listening port; 0 picks a free port")
	drain := fs.Duration("drain-timeout", 10*time.Second,
		"how long connections may take to drain after a stop")
	protocol := fs.String("protocol", "http", "only http (accepted for bench/stop_time)")
	fs.String("log-level", "warning", "ignored (accepted for bench/stop_time)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "go-http: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *protocol != "http" {
		fmt.Fprintf(os.Stderr, "go-http: bad --protocol=%s: only http\n", *protocol)
		return 2
	}
	if *port < 0 || *port > 65535 {
		fmt.Fprintf(os.Stderr, "go-http: bad --port=%d\n", *port)
		return 2
	}
	if *drain < 0 {
		fmt.Fprintf(os.Stderr, "go-http: bad --drain-timeout=%v: negative\n", *drain)
		return 2
	}
	raiseFileLimit()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-http: cannot listen on %s: %v\n", addr, err)
		return 1
	}
	actual := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(os.Stdout, "listening on %s\n",
		net.JoinHostPort(*host, strconv.Itoa(actual)))
	os.Stdout.Sync()

	mux := http.NewServeMux()
	mux.HandleFunc("/", root)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second, // quiesce's --http.header-timeout
		IdleTimeout:       60 * time.Second, // quiesce's --idle-timeout
		ErrorLog:          log.New(os.Stderr, "go-http: ", 0),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case <-sigs:
	case err := <-served:
		fmt.Fprintf(os.Stderr, "go-http: serve: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	go func() {
		select {
		case <-sigs: // a second signal: force now
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
		return 3
	}
	return 0
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
			fmt.Fprintf(os.Stderr, "go-http: setrlimit(RLIMIT_NOFILE): %v\n", err)
		}
	}
}
