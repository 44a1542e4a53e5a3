package main

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// samplePath is the repository's sample config, from this package's folder (go test's working directory).
var samplePath = filepath.Join("..", "..", "sfu.sample.yaml")

// TestSampleConfigCoversEveryFlag: sfu.sample.yaml names every flag of the node (so a flag added without its
// sample entry fails here), and names nothing else.
func TestSampleConfigCoversEveryFlag(t *testing.T) {
	b, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("sfu.sample.yaml is not a YAML mapping: %v", err)
	}
	keys := map[string]bool{}
	for i := 0; i < len(doc.Content[0].Content); i += 2 {
		keys[doc.Content[0].Content[i].Value] = true
	}
	var c config
	fs := newConfigFlags(&c)
	var missing []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" && !keys[f.Name] {
			missing = append(missing, f.Name)
		}
	})
	if len(missing) > 0 {
		t.Errorf("sfu.sample.yaml lacks %s: add each with its default and a comment", strings.Join(missing, ", "))
	}
	for k := range keys {
		if fs.Lookup(k) == nil {
			t.Errorf("sfu.sample.yaml names %q, which is not a flag", k)
		}
	}
}

// TestSampleConfigParses: the node reads sfu.sample.yaml, and every value in it is the flag's default: starting
// with the sample is starting with no file.
func TestSampleConfigParses(t *testing.T) {
	clearSFUEnv(t)
	fromSample, err := parseConfig([]string{"-config", samplePath, "-secret", "s"})
	if err != nil {
		t.Fatalf("sfu.sample.yaml: %v", err)
	}
	if fromSample.ConfigFile != samplePath {
		t.Errorf("ConfigFile %q", fromSample.ConfigFile)
	}
	defaults, err := parseConfig([]string{"-secret", "s"})
	if err != nil {
		t.Fatal(err)
	}
	fromSample.ConfigFile = ""
	if !reflect.DeepEqual(fromSample, defaults) {
		t.Errorf("sfu.sample.yaml's values are not the defaults:\nsample   %+v\ndefaults %+v", fromSample, defaults)
	}
	// Its room settings example, uncommented, is settings a node starts with.
	b, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	text, example, found := strings.Cut(string(b), "\n# room-defaults:")
	if !found {
		t.Fatal("sfu.sample.yaml has no room-defaults example")
	}
	text += "\nroom-defaults:" + strings.ReplaceAll(example, "\n# ", "\n")
	withRooms := writeConfig(t, text)
	c, err := parseConfig([]string{"-config", withRooms, "-secret", "s"})
	if err != nil || c.Rooms == nil || len(c.Rooms.Rooms) == 0 {
		t.Fatalf("the sample's room settings example: %v, rooms %+v", err, c.Rooms)
	}
	startTestNode(t, func(nc *config) { nc.Rooms = c.Rooms }) // the workers check the settings at start
	// Its values are the defaults, not choices: -dev with the sample still keeps every listener on loopback.
	dev, err := parseConfig([]string{"-config", samplePath, "-dev"})
	if err != nil || dev.Addr != "127.0.0.1:7880" || dev.UDPAddr != "127.0.0.1:7882" || dev.TCPAddr != "127.0.0.1:7881" {
		t.Errorf("-dev with the sample: addr %q udp %q tcp %q %v, want loopback", dev.Addr, dev.UDPAddr, dev.TCPAddr, err)
	}
}
