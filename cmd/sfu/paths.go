package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/edge-sfu/sfu/media/denoise"
)

// The node's files do not depend on the folder it is started from: their defaults are absolute, or found from
// the executable's place; a relative path in the -config file is relative to the file (configfile.go).

// defaultAuditDir is where a node keeps its audit log unless told otherwise (systemd's StateDirectory=sfu, the
// image's volume).
const defaultAuditDir = "/var/lib/sfu/audit"

// devAuditDir is a -dev node's audit folder: sfu/audit in the user's state folder ($XDG_STATE_HOME, else
// ~/.local/state), or defaultAuditDir without a home.
func devAuditDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "sfu", "audit")
	}
	home, err := os.UserHomeDir()
	if err != nil || !filepath.IsAbs(home) {
		return defaultAuditDir
	}
	return filepath.Join(home, ".local", "state", "sfu", "audit")
}

// rnnoiseModule is the file that makes a folder RNNoise's npm package.
const rnnoiseModule = "rnnoise.wasm"

// findRNNoise returns the first folder holding RNNoise's module, of: ../share/sfu/rnnoise-wasm beside the
// executable (an installed node: /usr/local/bin/sfu and /usr/local/share/sfu/rnnoise-wasm), and the npm
// package in the source tree this binary was built from (make run, make build, go test; not in a -trimpath
// build). It returns "" when none does, with the folders it searched.
func findRNNoise() (string, []string) {
	return findPackage("rnnoise-wasm", denoise.RNNoisePackage, rnnoiseModule)
}

// findPackage returns the first folder holding the file key of an npm package the node uses, of:
// ../share/sfu/<installed> beside the executable, and node_modules/<npmName> of the source tree this binary was
// built from. It returns "" when none does, with the folders it searched.
func findPackage(installed, npmName, key string) (string, []string) {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			dirs = append(dirs, filepath.Join(filepath.Dir(exe), "..", "share", "sfu", installed))
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) { // this file: <module>/cmd/sfu/paths.go
		dirs = append(dirs, filepath.Join(filepath.Dir(file), "..", "..", "node_modules", filepath.FromSlash(npmName)))
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, key)); err == nil {
			return filepath.Clean(d), dirs
		}
	}
	return "", dirs
}

// rnnoiseDir is the RNNoise folder the node uses: the one configured, which must hold the module, or the one
// findRNNoise finds ("" when none: RNNoise is then unavailable and says why when a room asks for it).
func rnnoiseDir(configured string) (dir string, searched []string, err error) {
	if configured == "" {
		dir, searched = findRNNoise()
		return dir, searched, nil
	}
	if _, err := os.Stat(filepath.Join(configured, rnnoiseModule)); err != nil {
		return "", nil, fmt.Errorf("-rnnoise-dir %s: no RNNoise module there (%w): give the folder of the npm package %s (make deps installs it in node_modules; the image in /usr/local/share/sfu/rnnoise-wasm)",
			configured, err, denoise.RNNoisePackage)
	}
	return configured, nil, nil
}

// The background blur's segmentation model: the npm package the browser client loads it from (served by the
// node under signaling.SegmentationPath), and the files that make a folder that package: the solution's script
// and the 16:9 model blur.js asks for.
const segmentationPackage = "@mediapipe/selfie_segmentation"

var segmentationFiles = []string{"selfie_segmentation.js", "selfie_segmentation_landscape.tflite"}

// segmentationDir is the folder of the segmentation model the node serves: the one configured, or else the first
// of ../share/sfu/selfie_segmentation beside the executable and the source tree's node_modules that holds it. ""
// (with why) when the folder lacks its files: background blur is then unavailable, and the node runs without it.
func segmentationDir(configured string) (string, error) {
	dir := configured
	if dir == "" {
		found, searched := findPackage("selfie_segmentation", segmentationPackage, segmentationFiles[0])
		if found == "" {
			return "", fmt.Errorf("no %s found in %q (make deps installs it; or -segmentation-dir)", segmentationPackage, searched)
		}
		dir = found
	}
	for _, f := range segmentationFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return "", fmt.Errorf("%s is not the npm package %s (-segmentation-dir): %w", dir, segmentationPackage, err)
		}
	}
	return dir, nil
}
