package signaling

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

// TestMetadataBound: the protocol documents the bound the room layer enforces.
func TestMetadataBound(t *testing.T) {
	if protocol.MaxMetadata != sfu.MaxMetadata {
		t.Fatalf("protocol.MaxMetadata %d, sfu.MaxMetadata %d", protocol.MaxMetadata, sfu.MaxMetadata)
	}
}

// TestDecodeCreate: a room creation's own keys are taken out, the settings keys kept as the room's settings, and
// unknown keys, bad names and timeouts refused.
func TestDecodeCreate(t *testing.T) {
	req, err := decodeCreate([]byte(`{"name":"r","metadata":"m","regions":["hk"],"empty_timeout":1.5,"e2ee":true,"max_participants":3,"language":"yue"}`))
	if err != nil {
		t.Fatal(err)
	}
	var settings map[string]any
	if err := json.Unmarshal(req.settings, &settings); err != nil {
		t.Fatal(err)
	}
	if req.name != "r" || req.metadata != "m" || len(req.regions) != 1 || req.emptyTimeout != 1500*time.Millisecond ||
		len(settings) != 3 || settings["e2ee"] != true || settings["language"] != "yue" {
		t.Fatalf("%+v settings %v", req, settings)
	}
	for _, bad := range []string{`[]`, `null`, `{"name":""}`, `{"name":"r","colour":1}`, `{"name":"r","empty_timeout":-1}`,
		`{"name":"r","empty_timeout":100000}`, `{"name":5}`} {
		if _, err := decodeCreate([]byte(bad)); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}
