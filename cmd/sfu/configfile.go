package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The node's configuration comes in layers, on one flag set: the command line, then the SFU_* environment
// variables for the flags it left unset, then the -config file (SFU_CONFIG) for those still unset, then the
// flags' defaults. So flag > env > file > default.
//
// The file is YAML whose keys are the flag names (udp-port-range: 50000-50100); a key that is no flag is an error.
// A list gives a flag that may be repeated each of its items, and a comma-separated flag its items joined by
// commas. A relative path in the file is relative to the file's folder. A value equal to the flag's default counts
// as not given (-dev then still moves the listeners to loopback). Two keys are not flags: room-defaults and
// rooms hold the room settings of a -room-config file ("default" and "rooms" there).

// Keys of the file that are not flags: the room settings.
const (
	keyRoomDefaults = "room-defaults"
	keyRooms        = "rooms"
)

// isPathFlag says whether a flag names a file or folder, which a config file gives relative to its own folder.
func isPathFlag(name string) bool {
	switch name {
	case "audit-dir", "rnnoise-dir", "segmentation-dir", "room-config", "tls-cert", "tls-key", "captions-grammar":
		return true
	}
	return false
}

// layerConfig parses args into fs, then sets the flags args left unset from their SFU_* variables, then those
// still unset from the file named by the flag "config" (when fs has it and it is set). It returns the names of the
// flags set by any layer, and the file's room settings (nil when it has none, or when -room-config is given on the
// command line or in the environment, which then wins).
func layerConfig(fs *flag.FlagSet, args []string) (map[string]bool, *roomConfig, error) {
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && !set[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: %w", envName(f.Name), err)
			}
			set[f.Name] = true
		}
	})
	if envErr != nil {
		return nil, nil, envErr
	}
	cf := fs.Lookup("config")
	if cf == nil || cf.Value.String() == "" {
		return set, nil, nil
	}
	roomsSet := set["room-config"]
	rooms, err := applyConfigFile(fs, cf.Value.String(), set)
	if err != nil {
		return nil, nil, err
	}
	if roomsSet {
		rooms = nil
	}
	return set, rooms, nil
}

// applyConfigFile sets the flags that set does not hold from the YAML file at path, adding them to set, and
// returns its room settings.
func applyConfigFile(fs *flag.FlagSet, path string, set map[string]bool) (*roomConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	base := filepath.Dir(abs)
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // an empty file
			return nil, nil
		}
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" { // only comments
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s: line %d: want a mapping of flag names to values", path, root.Line)
	}
	var rooms *roomConfig
	roomConfigLine := 0      // the line of a room-config key that names a file
	seen := map[string]int{} // key → its line
	fromFile := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		where := fmt.Sprintf("config file %s: line %d: %s", path, k.Line, name)
		if line, dup := seen[name]; dup {
			return nil, fmt.Errorf("%s: given twice (first on line %d)", where, line)
		}
		seen[name] = k.Line
		if name == keyRooms || name == keyRoomDefaults {
			if rooms == nil {
				rooms = &roomConfig{}
			}
			if err := decodeRooms(v, name, rooms); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			continue
		}
		if name == "config" {
			return nil, fmt.Errorf("%s: a config file cannot name another", where)
		}
		f := fs.Lookup(name)
		if f == nil {
			return nil, fmt.Errorf("%s: unknown key: not a flag of sfu (keys are the flag names, e.g. udp-port-range, or %s and %s)",
				where, keyRoomDefaults, keyRooms)
		}
		values, err := flagValues(f, v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if name == "room-config" && slices.ContainsFunc(values, func(s string) bool { return s != "" }) {
			roomConfigLine = k.Line
		}
		if set[name] { // a flag or a variable gave it
			continue
		}
		for _, s := range values {
			if isPathFlag(name) && s != "" && !filepath.IsAbs(s) {
				s = filepath.Join(base, s)
			}
			if err := fs.Set(name, s); err != nil {
				return nil, fmt.Errorf("%s: %q: %w", where, s, err)
			}
		}
		// A value equal to the default is the default: the sample's values, copied, leave -dev's loopback
		// listeners and the default worker chains' leniency as they are.
		fromFile[name] = f.Value.String() != f.DefValue
	}
	if rooms != nil && roomConfigLine != 0 {
		return nil, fmt.Errorf("config file %s: room settings in both room-config (line %d) and %s/%s: give them in one place",
			path, roomConfigLine, keyRoomDefaults, keyRooms)
	}
	for name, given := range fromFile {
		set[name] = given
	}
	return rooms, nil
}

// flagValues turns a YAML value into the strings to Set the flag to: a scalar is one; a list is each of its items
// for a flag that may be repeated, or the items joined by commas for a flag that holds one string (its
// comma-separated form).
func flagValues(f *flag.Flag, v *yaml.Node) ([]string, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return []string{""}, nil
		}
		return []string{v.Value}, nil
	case yaml.SequenceNode:
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: want a list of values", it.Line)
			}
			items = append(items, it.Value)
		}
		if g, ok := f.Value.(flag.Getter); ok {
			if _, one := g.Get().(string); !one {
				return nil, fmt.Errorf("a list, but the flag takes one value")
			}
			return []string{strings.Join(items, ",")}, nil
		}
		return items, nil
	default:
		return nil, fmt.Errorf("want a value or a list of values")
	}
}

// decodeRooms reads the room settings of key (room-defaults or rooms) into rc, as a -room-config file's.
func decodeRooms(v *yaml.Node, key string, rc *roomConfig) error {
	var plain any
	if err := v.Decode(&plain); err != nil {
		return err
	}
	b, err := json.Marshal(plain)
	if err != nil {
		return fmt.Errorf("room settings: %w", err)
	}
	if key == keyRoomDefaults {
		return json.Unmarshal(b, &rc.Default)
	}
	return json.Unmarshal(b, &rc.Rooms)
}
