// Package clustertest holds test helpers for code that uses package cluster:
// StartRedis runs a throw-away redis-server for one test; StartRedisServer
// one that the test may also kill and start again on the same port.
package clustertest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long StartRedis waits for the server to answer PING.
const startTimeout = 5 * time.Second

// StartRedis starts a real redis-server on a free loopback port, without
// persistence, in a temporary directory, waits until it answers PING and
// stops it when the test ends. It returns the server's URL
// (redis://127.0.0.1:PORT/0). The test fails if redis-server is not
// installed or does not come up within 5 s.
func StartRedis(t testing.TB) (url string) {
	t.Helper()
	return StartRedisServer(t).URL
}

// Redis is a throw-away redis-server that a test may kill, as a crash would,
// and start again, empty, on the same port.
type Redis struct {
	URL  string // redis://127.0.0.1:PORT/0
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	stop func() // kills the running server and waits for it; nil while stopped
}

// StartRedisServer is StartRedis returning the server, which the test may
// Kill and Restart; it is killed when the test ends.
func StartRedisServer(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, statErr := exec.LookPath("/usr/bin/redis-server"); statErr != nil {
			t.Fatal("redis-server is not installed: run make deps")
		}
		bin = "/usr/bin/redis-server"
	}
	dir := t.TempDir()

	// The free port is found by binding :0 and closing it, so another process
	// may take it before redis-server does: try a few ports.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("clustertest: find a free port: %v", err)
		}
		url, stop, err := startOn(bin, dir, port)
		if err == nil {
			r := &Redis{URL: url, bin: bin, dir: dir, port: port, stop: stop}
			t.Cleanup(r.Kill)
			return r
		}
		lastErr = err
	}
	t.Fatalf("clustertest: start redis-server: %v", lastErr)
	return nil
}

// Kill stops the server with SIGKILL and waits until it has exited. Without
// persistence its data is gone. Killing a stopped server does nothing.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

// Restart starts a killed server again, empty, on the same port, and waits
// until it answers PING (5 s at most). It fails if the server is running or
// another process has taken the port meanwhile.
func (r *Redis) Restart() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		return errors.New("clustertest: redis-server is running")
	}
	_, stop, err := startOn(r.bin, r.dir, r.port)
	if err != nil {
		return err
	}
	r.stop = stop
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects the server's output for error messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startOn runs redis-server on port and waits until it answers PING; stop kills it and waits for it.
func startOn(bin, dir string, port int) (url string, stop func(), err error) {
	return run(bin, dir, port, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
}

// StartSentinel starts a Redis Sentinel that watches the server at masterURL under the name master, and returns
// the URL a client of the master through the Sentinel uses (redis://127.0.0.1:PORT/0?master_name=master). It
// is stopped when the test ends.
func StartSentinel(t testing.TB, masterURL, master string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: run make deps")
	}
	u, err := neturl.Parse(masterURL)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf") // the Sentinel rewrites its configuration file
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("sentinel monitor %s %s %s 1\n", master, u.Hostname(), u.Port())), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("clustertest: find a free port: %v", err)
		}
		_, stop, err := run(bin, dir, port, conf, "--sentinel", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir)
		if err == nil {
			t.Cleanup(stop)
			return fmt.Sprintf("redis://127.0.0.1:%d/0?master_name=%s", port, neturl.QueryEscape(master))
		}
		lastErr = err
	}
	t.Fatalf("clustertest: start redis-sentinel: %v", lastErr)
	return ""
}

// run starts bin with args, to listen on port, and waits until it answers PING; stop kills it and waits for it.
func run(bin, dir string, port int, args ...string) (url string, stop func(), err error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out := &lockedBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop = func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return "", nil, fmt.Errorf("%s on port %d exited: %v\n%s", bin, port, waitErr, out.String())
		default:
		}
		// The server must be ours: a server of another test that took the
		// port first would answer PING too.
		if err := ping(addr, cmd.Process.Pid); err == nil {
			break
		} else if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server on port %d does not answer PING after %v: %w\n%s", port, startTimeout, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "redis://" + addr + "/0", stop, nil
}

// ping sends PING, expects +PONG, then checks with INFO server that the
// server answering is the process pid.
func ping(addr string, pid int) error {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	header, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	header = strings.TrimSpace(header)
	n, err := strconv.Atoi(strings.TrimPrefix(header, "$"))
	if !strings.HasPrefix(header, "$") || err != nil || n < 0 {
		return fmt.Errorf("INFO answered %q", header)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	want := "process_id:" + strconv.Itoa(pid)
	for _, l := range strings.Split(string(body), "\n") {
		if strings.TrimSpace(l) == want {
			return nil
		}
	}
	return fmt.Errorf("the server on %s is not process %d", addr, pid)
}
