package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// startServe runs serve on free loopback ports and returns the HTTP and UDP addresses.
func startServe(t *testing.T) (string, string, context.CancelFunc, <-chan error) {
	t.Helper()
	httpAddr := freeAddr(t, "tcp")
	udpAddr := freeAddr(t, "udp")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveConfig{HTTPAddr: httpAddr, UDPAddr: udpAddr, Identity: "tenant-a/app-0", Log: &bytes.Buffer{}})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", httpAddr, 100*time.Millisecond); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen on %s", httpAddr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return httpAddr, udpAddr, cancel, done
}

func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func probe(args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := run(append([]string{"probe"}, args...), &out, &errOut)
	return code, out.String() + errOut.String()
}

func TestServeAnswersAndProbesSucceed(t *testing.T) {
	httpAddr, udpAddr, cancel, done := startServe(t)

	code, out := probe("http", httpAddr, "--timeout", "1s")
	if code != exitOK || !strings.Contains(out, "200 tenant-a/app-0") {
		t.Fatalf("http probe: code %d, output %q", code, out)
	}
	if code, out = probe("tcp", httpAddr); code != exitOK || !strings.HasPrefix(out, "OK tcp") {
		t.Fatalf("tcp probe: code %d, output %q", code, out)
	}
	if code, out = probe("udp", udpAddr, "--timeout", "1s"); code != exitOK || !strings.Contains(out, "echo tenant-a/app-0 ping") {
		t.Fatalf("udp probe: code %d, output %q", code, out)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after cancel", err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
	// Stopped means the ports no longer answer.
	if code, out = probe("tcp", httpAddr, "--timeout", "300ms"); code != exitFail || !strings.HasPrefix(out, "FAIL tcp") {
		t.Fatalf("tcp probe after stop: code %d, output %q", code, out)
	}
}

func TestProbeFailsWithinTheTimeout(t *testing.T) {
	// A bound UDP socket that never answers: the probe must wait for the echo, not count the send.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	code, out := probe("udp", silent.LocalAddr().String(), "--timeout", "200ms")
	if code != exitFail || !strings.HasPrefix(out, "FAIL udp") {
		t.Fatalf("udp probe of a silent socket: code %d, output %q", code, out)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("udp probe took %s with a 200ms timeout", took)
	}
	if code, out = probe("http", freeAddr(t, "tcp"), "--timeout", "200ms"); code != exitFail {
		t.Fatalf("http probe of a closed port: code %d, output %q", code, out)
	}
	if code, out = probe("dns", silent.LocalAddr().String(), "--timeout", "200ms"); code != exitFail {
		t.Fatalf("dns probe of a silent server: code %d, output %q", code, out)
	}
}

func TestBadUsageExitsTwo(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"tcp"},
		{"tcp", "no-port"},
		{"sctp", "127.0.0.1:1"},
		{"tcp", "127.0.0.1:1", "--timeout", "soon"},
		{"tcp", "127.0.0.1:1", "extra"},
	} {
		if code, out := probe(args...); code != exitUsage {
			t.Errorf("probe %q: code %d, want %d (output %q)", args, code, exitUsage, out)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"dance"}, &out, &errOut); code != exitUsage {
		t.Errorf("unknown command: code %d", code)
	}
}
