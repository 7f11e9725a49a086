// Command tenant-app is the tenant workload of the local stack's real node, and the probe the
// isolation tests run inside pods.
//
//	tenant-app serve                                  HTTP on :8080, UDP echo on :8081
//	tenant-app probe tcp|udp|http|dns TARGET [--timeout 1s] [--name NAME]
//
// serve answers GET / with 200 and "<namespace>/<name>" from POD_NAMESPACE and POD_NAME (the
// Downward API), GET /healthz with 200, and echoes every UDP datagram back prefixed with the same
// identity. It stops on SIGTERM or SIGINT.
//
// probe prints one line and exits 0 when the target answered, 1 when it refused, timed out or
// answered wrongly, 2 on bad usage. udp counts as answered only when the echo comes back (a UDP
// send alone proves nothing); http needs any HTTP response; dns needs an A answer for --name from
// the server TARGET.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if err := serve(ctx, serveConfig{
			HTTPAddr: envOr("HTTP_ADDR", ":8080"),
			UDPAddr:  envOr("UDP_ADDR", ":8081"),
			Identity: identity(),
			Log:      stderr,
		}); err != nil {
			fmt.Fprintf(stderr, "tenant-app: %v\n", err)
			return exitFail
		}
		return exitOK
	case "probe":
		return probeCommand(args[1:], stdout, stderr)
	default:
		fmt.Fprintln(stderr, usage)
		return exitUsage
	}
}

const usage = "usage: tenant-app serve | tenant-app probe tcp|udp|http|dns HOST:PORT [--timeout 1s] [--name NAME]"

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func identity() string {
	ns, name := os.Getenv("POD_NAMESPACE"), os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

type serveConfig struct {
	HTTPAddr, UDPAddr, Identity string
	Log                         io.Writer
}

// serve runs the HTTP server and the UDP echo until ctx ends, then shuts both down.
func serve(ctx context.Context, cfg serveConfig) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, cfg.Identity+"\n") })
	srv := &http.Server{Addr: cfg.HTTPAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	pc, err := net.ListenPacket("udp", cfg.UDPAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen on udp %s: %w", cfg.UDPAddr, err)
	}
	fmt.Fprintf(cfg.Log, "tenant-app %s: HTTP on %s, UDP echo on %s\n", cfg.Identity, ln.Addr(), pc.LocalAddr())

	errs := make(chan error, 2)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	go func() { errs <- echoUDP(pc, cfg.Identity) }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	pc.Close()
	if serveErr != nil && !errors.Is(serveErr, net.ErrClosed) {
		return serveErr
	}
	fmt.Fprintf(cfg.Log, "tenant-app %s: stopped\n", cfg.Identity)
	return nil
}

func echoUDP(pc net.PacketConn, id string) error {
	buf := make([]byte, 2048)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		reply := append([]byte(id+" "), buf[:n]...)
		_, _ = pc.WriteTo(reply, addr)
	}
}

func probeCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", time.Second, "how long to wait for the answer")
	name := fs.String("name", "kubernetes.default.svc.cluster.local", "the name a dns probe asks for")
	// Flags may follow the positional arguments: tenant-app probe tcp host:port --timeout 1s.
	var pos []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return exitUsage
		}
		rest = fs.Args()
		if len(rest) > 0 {
			pos = append(pos, rest[0])
			rest = rest[1:]
		}
	}
	if len(pos) != 2 || *timeout <= 0 {
		fmt.Fprintln(stderr, usage)
		return exitUsage
	}
	proto, target := pos[0], pos[1]
	if _, _, err := net.SplitHostPort(target); err != nil {
		fmt.Fprintf(stderr, "tenant-app probe: target %q is not HOST:PORT\n", target)
		return exitUsage
	}
	var detail string
	var err error
	start := time.Now()
	switch proto {
	case "tcp":
		detail, err = probeTCP(target, *timeout)
	case "udp":
		detail, err = probeUDP(target, *timeout)
	case "http":
		detail, err = probeHTTP(target, *timeout)
	case "dns":
		detail, err = probeDNS(target, *name, *timeout)
	default:
		fmt.Fprintf(stderr, "tenant-app probe: unknown protocol %q (tcp, udp, http, dns)\n", proto)
		return exitUsage
	}
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL %s %s %s: %v\n", proto, target, took, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "OK %s %s %s: %s\n", proto, target, took, detail)
	return exitOK
}

func probeTCP(target string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", target, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return "connected from " + c.LocalAddr().String(), nil
}

func probeUDP(target string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("udp", target, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping")); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return "echo " + strings.TrimSpace(string(buf[:n])), nil
}

func probeHTTP(target string, timeout time.Duration) (string, error) {
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get("http://" + target + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body))), nil
}

func probeDNS(server, name string, timeout time.Duration) (string, error) {
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	addrs, err := r.LookupIPAddr(ctx, strings.TrimSuffix(name, ".")+".")
	if err != nil {
		return "", err
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("no address for %s", name)
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return name + " " + strings.Join(out, ","), nil
}
