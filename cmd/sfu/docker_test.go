package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerStage is one FROM of a Dockerfile: its instructions, continuation lines joined.
type dockerStage struct {
	name  string
	instr [][]string // instruction (upper case) and its words
}

// readDockerfile splits the repository's Dockerfile into stages.
func readDockerfile(t *testing.T) []dockerStage {
	t.Helper()
	b, err := os.ReadFile(repoFile("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var line string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(l, "\\"); ok {
			line += cont + " "
			continue
		}
		line += l
		words := strings.Fields(line)
		line = ""
		if len(words) == 0 {
			continue
		}
		words[0] = strings.ToUpper(words[0])
		if words[0] == "FROM" {
			st := dockerStage{}
			if i := slices.IndexFunc(words, func(w string) bool { return strings.EqualFold(w, "AS") }); i > 0 && i+1 < len(words) {
				st.name = words[i+1]
			}
			stages = append(stages, st)
		}
		if len(stages) > 0 {
			stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, words)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("the Dockerfile has %d stages, want a build and a runtime stage", len(stages))
	}
	return stages
}

// aptPackages are the packages a stage's RUN instructions apt-get install.
func (st dockerStage) aptPackages() []string {
	var pkgs []string
	for _, in := range st.instr {
		if in[0] != "RUN" {
			continue
		}
		for _, cmd := range regexp.MustCompile(`&&|;`).Split(strings.Join(in[1:], " "), -1) {
			w := strings.Fields(cmd)
			i := slices.Index(w, "install")
			if i < 0 || !slices.ContainsFunc(w[:i], func(s string) bool { return strings.HasSuffix(s, "apt-get") }) {
				continue
			}
			for _, p := range w[i+1:] {
				if !strings.HasPrefix(p, "-") {
					pkgs = append(pkgs, p)
				}
			}
		}
	}
	return pkgs
}

// runs says whether one of the stage's RUN instructions has s.
func (st dockerStage) runs(s string) bool {
	return slices.ContainsFunc(st.instr, func(in []string) bool { return in[0] == "RUN" && strings.Contains(strings.Join(in, " "), s) })
}

// copies returns the stage's COPY instructions as (from stage, sources, destination).
func (st dockerStage) copies() (out []struct {
	from string
	src  []string
	dst  string
}) {
	for _, in := range st.instr {
		if in[0] != "COPY" && in[0] != "ADD" {
			continue
		}
		var from string
		var args []string
		for _, w := range in[1:] {
			if f, ok := strings.CutPrefix(w, "--from="); ok {
				from = f
			} else if !strings.HasPrefix(w, "--") {
				args = append(args, w)
			}
		}
		if len(args) >= 2 {
			out = append(out, struct {
				from string
				src  []string
				dst  string
			}{from, args[:len(args)-1], args[len(args)-1]})
		}
	}
	return out
}

// makefilePackages returns the Debian packages of a Makefile variable (e.g. AUDIO_PKGS).
func makefilePackages(t *testing.T, makefile, name string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + `\s*:?=\s*(.*)$`).FindStringSubmatch(makefile)
	if m == nil {
		t.Fatalf("the Makefile has no %s", name)
	}
	return strings.Fields(m[1])
}

// TestDockerfile: every file the Dockerfile copies from the build context exists; the build stage installs the
// Makefile's -dev packages, the runtime stage the libraries they are for and the Makefile's other packages (the
// test-only espeak-ng aside), so the two cannot drift; the binary finds the RNNoise files where the image puts
// them; the image runs as a user of its own with the config file and a health check.
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	for _, st := range stages {
		for _, c := range st.copies() {
			if c.from != "" {
				continue
			}
			for _, src := range c.src {
				if m, err := filepath.Glob(repoFile(src)); err != nil || len(m) == 0 {
					t.Errorf("the Dockerfile copies %s, which the repository does not have", src)
				}
			}
		}
	}

	mk, err := os.ReadFile(repoFile("Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	makePkgs := append(makefilePackages(t, string(mk), "AUDIO_PKGS"), makefilePackages(t, string(mk), "CAPTION_PKGS")...)
	testOnly := map[string]bool{"espeak-ng": true} // the tests' speech synthesizer (Makefile: deps-audio)
	buildOnly := map[string]bool{"pkg-config": true}
	extras := map[string]bool{"ca-certificates": true, "curl": true} // TLS to captions servers; the health check

	i := slices.IndexFunc(stages, func(st dockerStage) bool { return st.runs("go build") })
	if i < 0 {
		t.Fatal("no stage of the Dockerfile runs go build")
	}
	build, runtime := stages[i].aptPackages(), stages[len(stages)-1].aptPackages()
	for _, p := range makePkgs {
		if (strings.HasSuffix(p, "-dev") || buildOnly[p]) && !slices.Contains(build, p) {
			t.Errorf("the build stage does not install %s (Makefile)", p)
		}
	}
	accounted := map[string]bool{}
	for _, p := range makePkgs {
		switch {
		case testOnly[p] || buildOnly[p]:
		case strings.HasSuffix(p, "-dev"): // libfoo-dev: its library, libfoo<version>
			lib := regexp.MustCompile(`^` + regexp.QuoteMeta(strings.TrimSuffix(p, "-dev")) + `[0-9][0-9.]*$`)
			j := slices.IndexFunc(runtime, lib.MatchString)
			if j < 0 {
				t.Errorf("the runtime stage installs no library of %s (Makefile)", p)
				continue
			}
			accounted[runtime[j]] = true
		default:
			if !slices.Contains(runtime, p) {
				t.Errorf("the runtime stage does not install %s (Makefile)", p)
			}
			accounted[p] = true
		}
	}
	for _, p := range runtime {
		if !accounted[p] && !extras[p] {
			t.Errorf("the runtime stage installs %s, which the Makefile does not (add it there, or to this test's extras)", p)
		}
	}

	final := stages[len(stages)-1]
	var exe, rnnoise, segmentation, conf string
	for _, c := range final.copies() {
		switch {
		case c.from != "" && strings.HasSuffix(c.dst, "/sfu"):
			exe = c.dst
		case strings.HasSuffix(c.src[0], "rnnoise-wasm"):
			rnnoise = c.dst
		case strings.HasSuffix(c.src[0], segmentationPackage):
			segmentation = c.dst
		case c.src[0] == "sfu.sample.yaml":
			conf = c.dst
		}
	}
	if exe == "" || rnnoise != filepath.Join(filepath.Dir(exe), "..", "share", "sfu", "rnnoise-wasm") {
		t.Errorf("the binary %q would not find RNNoise at %q (findRNNoise looks in ../share/sfu/rnnoise-wasm beside it)", exe, rnnoise)
	}
	if exe == "" || segmentation != filepath.Join(filepath.Dir(exe), "..", "share", "sfu", "selfie_segmentation") {
		t.Errorf("the binary %q would not find the blur's segmentation model at %q (segmentationDir looks in ../share/sfu/selfie_segmentation beside it)", exe, segmentation)
	}
	var user, entry, health string
	for _, in := range final.instr {
		switch in[0] {
		case "USER":
			user = in[1]
		case "ENTRYPOINT":
			entry = strings.Join(in[1:], " ")
		case "HEALTHCHECK":
			health = strings.Join(in[1:], " ")
		}
	}
	if user == "" || user == "root" || user == "0" {
		t.Errorf("USER %q: want an unprivileged user", user)
	}
	if conf == "" || !strings.Contains(entry, `"-config", "`+conf+`"`) {
		t.Errorf("ENTRYPOINT %s: want sfu -config with the config the image copies (%q)", entry, conf)
	}
	if !strings.Contains(health, "/healthz") {
		t.Errorf("HEALTHCHECK %q: want /healthz", health)
	}
}
