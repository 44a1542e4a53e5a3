package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling"
)

// The node serves the background blur's segmentation model (the npm package @mediapipe/selfie_segmentation) to the
// browser client: its files and nothing else.

// segmentationOption points a test node at folder dir for the segmentation model.
func segmentationOption(dir string) func(*config) {
	return func(c *config) { c.SegmentationDir = dir }
}

// rawGetBody sends GET path to the node exactly as written (no cleaning of "..", no escapes undone) and returns the
// status code and body.
func rawGetBody(t *testing.T, n *node, path string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", n.addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, n.addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// TestSegmentationServed: the node found the model in the source tree's node_modules (make deps) and serves its
// script (as JavaScript, under the page's Content-Security-Policy, which lets WebAssembly compile and nothing
// more), its WebAssembly (as application/wasm, which the browser compiles while it downloads) and its model. A
// folder is not listed.
func TestSegmentationServed(t *testing.T) {
	n := startTestNode(t)
	for file, wantType := range map[string]string{
		"selfie_segmentation.js":                          "text/javascript",
		"selfie_segmentation_solution_simd_wasm_bin.wasm": "application/wasm",
		"selfie_segmentation_landscape.tflite":            "",
		"selfie_segmentation.binarypb":                    "",
	} {
		resp, err := http.Get(n.baseURL() + signaling.SegmentationPath + file)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s (is the npm package installed? make deps)", file, resp.Status)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, wantType) {
			t.Errorf("%s: Content-Type %q, want %s", file, ct, wantType)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self' 'wasm-unsafe-eval';") || strings.Contains(csp, "'unsafe-eval'") {
			t.Errorf("%s: Content-Security-Policy %q: want script-src 'self' 'wasm-unsafe-eval' and no 'unsafe-eval'", file, csp)
		}
	}
	for _, path := range []string{signaling.SegmentationPath, strings.TrimSuffix(signaling.SegmentationPath, "/")} {
		if code, body := rawGetBody(t, n, path); code == http.StatusOK || strings.Contains(body, "selfie_segmentation.js") {
			t.Errorf("GET %s: %d, lists the folder: %.200q", path, code, body)
		}
	}
}

// TestSegmentationNoEscape: a path that climbs out of the model's folder ("..", raw or escaped) reaches nothing
// beside it, and a subfolder is not listed.
func TestSegmentationNoEscape(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "model")
	for _, f := range append([]string{"sub/inner.txt"}, segmentationFiles...) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("model file "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const secret = "the node's secret beside the model"
	if err := os.WriteFile(filepath.Join(root, "secret.txt"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startTestNode(t, segmentationOption(dir))
	if code, body := rawGetBody(t, n, signaling.SegmentationPath+"selfie_segmentation.js"); code != http.StatusOK || body != "model file selfie_segmentation.js" {
		t.Fatalf("the model's script: %d %q", code, body)
	}
	for _, p := range []string{"../secret.txt", "..%2fsecret.txt", "%2e%2e/secret.txt", "%2e%2e%2fsecret.txt", "sub/../../secret.txt",
		"..%5csecret.txt", "sub/", "sub"} {
		code, body := rawGetBody(t, n, signaling.SegmentationPath+p)
		if strings.Contains(body, secret) || strings.Contains(body, "inner.txt") {
			t.Errorf("GET %s%s: %d %q", signaling.SegmentationPath, p, code, body)
		}
	}
}

// TestSegmentationMissing: a node without the model starts (blur is unavailable, which the page says) and
// answers 404 for its files.
func TestSegmentationMissing(t *testing.T) {
	n := startTestNode(t, segmentationOption(t.TempDir()))
	if code, _ := rawGetBody(t, n, signaling.SegmentationPath+"selfie_segmentation.js"); code != http.StatusNotFound {
		t.Errorf("a node without the model answers %d for its script, want 404", code)
	}
}
