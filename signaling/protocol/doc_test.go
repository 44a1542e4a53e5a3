package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// docExample is one JSON message of a ```json block of PROTOCOL.md.
type docExample struct {
	line    int    // of the block's opening fence
	section string // the level-2 heading it is under
	raw     json.RawMessage
}

const (
	clientSection = "## Client → server"
	serverSection = "## Server → client"
)

// docExamples returns every message of the ```json blocks of the document; a block may hold several.
func docExamples(t *testing.T, doc []byte) []docExample {
	t.Helper()
	var out []docExample
	var section string
	var block *bytes.Buffer
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case block != nil && strings.TrimSpace(line) == "```":
			dec := json.NewDecoder(block)
			for {
				var raw json.RawMessage
				if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("PROTOCOL.md:%d: the json block does not parse: %v", start, err)
				}
				out = append(out, docExample{line: start, section: section, raw: raw})
			}
			block = nil
		case block != nil:
			block.WriteString(line + "\n")
		case strings.HasPrefix(line, "```json"):
			block, start = &bytes.Buffer{}, n
		case strings.HasPrefix(line, "## "):
			section = line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if block != nil {
		t.Fatalf("PROTOCOL.md:%d: the json block is not closed", start)
	}
	return out
}

// checkExample decodes one example into its type, strictly; it returns the example's type.
func checkExample(ex docExample) (string, error) {
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(ex.raw, &head); err != nil || head.Type == nil {
		return "", fmt.Errorf("not a message with a type: %s", ex.raw)
	}
	typ := *head.Type
	var target any
	switch ex.section {
	case clientSection:
		if _, err := Decode(ex.raw); err != nil {
			return typ, fmt.Errorf("Decode refuses it: %w", err)
		}
		target = &Request{}
	case serverSection:
		if target = ServerMessage(typ); target == nil {
			return typ, fmt.Errorf("%q is not a server message type", typ)
		}
	default:
		return typ, fmt.Errorf("an example outside the %q and %q sections", clientSection, serverSection)
	}
	dec := json.NewDecoder(bytes.NewReader(ex.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		return typ, fmt.Errorf("does not decode into %T: %w", target, err)
	}
	var generic any
	if err := json.Unmarshal(ex.raw, &generic); err != nil {
		return typ, err
	}
	if missing := missingFields(generic, reflect.TypeOf(target), ""); len(missing) > 0 {
		return typ, fmt.Errorf("lacks the fields %s of %T, which the server always sends", strings.Join(missing, ", "), target)
	}
	return typ, nil
}

// missingFields lists the fields of t (a struct of this package, or a pointer, slice or map of one) without
// omitempty that v, a decoded JSON value of t, lacks. Types of other packages are not looked into.
func missingFields(v any, t reflect.Type, path string) []string {
	switch t.Kind() {
	case reflect.Pointer:
		return missingFields(v, t.Elem(), path)
	case reflect.Slice, reflect.Map:
		var out []string
		switch v := v.(type) {
		case []any:
			for i, e := range v {
				out = append(out, missingFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
			}
		case map[string]any:
			for k, e := range v {
				out = append(out, missingFields(e, t.Elem(), path+"."+k)...)
			}
		}
		return out
	case reflect.Struct:
	default:
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok || t.PkgPath() != reflect.TypeFor[Request]().PkgPath() {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		fv, present := obj[name]
		if !present {
			if !strings.Contains(opts, "omitempty") {
				out = append(out, strings.TrimPrefix(path+"."+name, "."))
			}
			continue
		}
		out = append(out, missingFields(fv, f.Type, path+"."+name)...)
	}
	return out
}

// constants returns the values of the package's string constants whose names start with prefix, read from its
// source.
func constants(t *testing.T, prefix string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, file := range []string{"request.go", "server.go"} {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, prefix) || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s is not a string literal", name.Name)
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out[name.Name] = v
				}
			}
		}
	}
	return out
}

// TestProtocolDocExamples decodes every JSON example of PROTOCOL.md into its type with unknown fields
// disallowed: client messages through Decode and into Request, server messages into the struct of their type,
// which they must fill but for omitempty fields. Every message type must have an example.
func TestProtocolDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := docExamples(t, doc)
	documented := map[string]bool{} // by section and type
	for _, ex := range examples {
		typ, err := checkExample(ex)
		if err != nil {
			t.Errorf("PROTOCOL.md:%d: %s example: %v", ex.line, typ, err)
			continue
		}
		documented[ex.section+" "+typ] = true
	}
	consts := constants(t, "Type")
	if len(consts) < 20 {
		t.Fatalf("found only %d Type constants: %v", len(consts), consts)
	}
	for name, typ := range consts {
		_, err := Decode([]byte(`{"type":` + strconv.Quote(typ) + `}`))
		var pe *ProtocolError
		client := !errors.As(err, &pe) || pe.Code != CodeUnknownType
		server := ServerMessage(typ) != nil
		if !client && !server {
			t.Errorf("%s (%q) is neither a client nor a server message type", name, typ)
		}
		if client && !documented[clientSection+" "+typ] {
			t.Errorf("%s (%q) has no client example in PROTOCOL.md", name, typ)
		}
		if server && !documented[serverSection+" "+typ] {
			t.Errorf("%s (%q) has no server example in PROTOCOL.md", name, typ)
		}
	}
	t.Logf("%d examples of %d types", len(examples), len(consts))
}

// TestProtocolDocErrorCodes: the error code table of PROTOCOL.md lists exactly the Code constants.
func TestProtocolDocErrorCodes(t *testing.T) {
	doc, err := os.ReadFile("../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]bool{}
	in := false // in the table whose header is "| code | ..."
	for line := range strings.Lines(string(doc)) {
		switch {
		case strings.HasPrefix(line, "| code |"):
			in = true
		case !strings.HasPrefix(line, "|"):
			in = false
		case in:
			if code, ok := strings.CutPrefix(line, "| `"); ok {
				if code, _, ok = strings.Cut(code, "` |"); ok {
					table[code] = true
				}
			}
		}
	}
	consts := constants(t, "Code")
	codes := map[string]bool{}
	for name, code := range consts {
		codes[code] = true
		if !table[code] {
			t.Errorf("%s (%q) is not in the error code table of PROTOCOL.md", name, code)
		}
	}
	for code := range table {
		if !codes[code] {
			t.Errorf("PROTOCOL.md lists the error code %q, which has no constant", code)
		}
	}
	if len(codes) < 12 {
		t.Fatalf("found only %d codes", len(codes))
	}
}

// TestDocExampleChecks: the checks of TestProtocolDocExamples catch what they are meant to.
func TestDocExampleChecks(t *testing.T) {
	for _, tt := range []struct {
		name, section, json string
	}{
		{"misnamed server field", serverSection, `{"type": "pong", "idd": 7}`},
		{"misnamed nested field", serverSection, `{"type": "track_muted", "participant_id": "p", "track": {"id": "t", "kind": "audio", "muted": true, "mute": true}}`},
		{"missing field", serverSection, `{"type": "bye"}`},
		{"missing nested field", serverSection, `{"type": "participant_left", "participant": {"id": "p", "identity": "i", "name": "n", "publish": true, "subscribe": true, "tracks": [{"id": "t"}]}}`},
		{"wrong field type", serverSection, `{"type": "room_state", "locked": "yes"}`},
		{"unknown server type", serverSection, `{"type": "joined_room", "room": "r"}`},
		{"client type in the server section", serverSection, `{"type": "join", "token": "t"}`},
		{"misnamed client field", clientSection, `{"type": "mute", "track": "t", "muted": true, "mutd": true}`},
		{"client message Decode refuses", clientSection, `{"type": "mute", "track": "t"}`},
		{"unknown client type", clientSection, `{"type": "unjoin"}`},
		{"no type", clientSection, `{"token": "t"}`},
		{"outside the sections", "## Order of a session", `{"type": "ping"}`},
	} {
		if typ, err := checkExample(docExample{section: tt.section, raw: json.RawMessage(tt.json)}); err == nil {
			t.Errorf("%s: %s passed as a %q example", tt.name, tt.json, typ)
		}
	}
	if _, err := checkExample(docExample{section: serverSection, raw: json.RawMessage(`{"type": "bye", "reason": "left"}`)}); err != nil {
		t.Errorf("a good example failed: %v", err)
	}
}

// TestDocExamplesParse: several messages in one block, and blocks other than json are skipped.
func TestDocExamplesParse(t *testing.T) {
	doc := "# x\n```\n{not json}\n```\n" + serverSection + "\n```json\n{\"type\": \"a\"}\n{\"type\": \"b\",\n \"x\": 1}\n```\n"
	got := docExamples(t, []byte(doc))
	if len(got) != 2 || got[0].section != serverSection || got[1].line != 6 {
		t.Fatalf("got %+v", got)
	}
}
