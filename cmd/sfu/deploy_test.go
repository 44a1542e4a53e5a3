package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
)

// repoFile is a file of the repository, from this package's folder (go test's working directory).
func repoFile(name string) string { return filepath.Join("..", "..", filepath.FromSlash(name)) }

// dashboardExprs returns every PromQL expression of a Grafana dashboard's panels.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(repoFile("deploy/grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("deploy/grafana-dashboard.json: %v", err)
	}
	var exprs []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(d)
	return exprs
}

// metricFamilies reads the names and types of a /metrics text.
func metricFamilies(text string) map[string]string {
	fams := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			fams[f[2]] = f[3]
		}
	}
	return fams
}

// hasSeries says whether the /metrics text has a sample of the series name (e.g. a histogram's _bucket).
func hasSeries(text, name string) bool {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
			return true
		}
	}
	return false
}

// TestMetricsForOperators scrapes a node of a cluster (which has every metric the node can serve): the metric
// names follow Prometheus' conventions (base units, counters in _total), and every metric the Grafana dashboard
// queries is among them.
func TestMetricsForOperators(t *testing.T) {
	redis := clustertest.StartRedis(t)
	n := clusterNode(t, redis, "hk", "hk-a", 100)
	text := scrape(t, n)
	fams := metricFamilies(text)
	if fams["sfu_participants"] == "" || fams["sfu_node_info"] == "" {
		t.Fatalf("the scrape lacks sfu_participants or sfu_node_info:\n%s", text)
	}
	notBase := regexp.MustCompile(`_(bps|kbps|mbps|ms|us|kb|mb|gb|percent|minutes|hours)(_|$)`)
	for name, typ := range fams {
		if !strings.HasPrefix(name, "sfu_") {
			continue
		}
		if notBase.MatchString(name) {
			t.Errorf("%s: not in base units (seconds, bytes, bits_per_second, ratio)", name)
		}
		if (typ == "counter") != strings.HasSuffix(name, "_total") {
			t.Errorf("%s is a %s: counters, and only they, end in _total", name, typ)
		}
	}

	metric := regexp.MustCompile(`\b(?:sfu|process|go)_[a-z0-9_]+`)
	var queried []string
	for _, e := range dashboardExprs(t) {
		queried = append(queried, metric.FindAllString(e, -1)...)
	}
	slices.Sort(queried)
	queried = slices.Compact(queried)
	if len(queried) < 10 {
		t.Fatalf("the dashboard queries only %v", queried)
	}
	for _, name := range queried {
		if !hasSeries(text, name) {
			t.Errorf("the dashboard queries %s, which the node's /metrics does not have", name)
		}
	}
}

// TestPrometheusScrapeConfig: deploy/prometheus.yml scrapes /metrics at the node's default -metrics-addr.
func TestPrometheusScrapeConfig(t *testing.T) {
	b, err := os.ReadFile(repoFile("deploy/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("deploy/prometheus.yml: %v", err)
	}
	want := newConfigFlags(&config{}).Lookup("metrics-addr").DefValue
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if sc.JobName == "sfu" && sc.MetricsPath == "/metrics" && slices.Contains(st.Targets, want) {
				return
			}
		}
	}
	t.Errorf("deploy/prometheus.yml has no job sfu scraping /metrics at %s: %+v", want, cfg)
}

// TestSystemdUnit: deploy/sfu.service runs the node as its own user with the config file, raises the descriptor
// limit, and stops it with SIGTERM, waiting longer than the node's drain.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(repoFile("deploy/sfu.service"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if keys["ExecStart"] != "/usr/local/bin/sfu -config /etc/sfu/sfu.yaml" {
		t.Errorf("ExecStart=%s", keys["ExecStart"])
	}
	if u := keys["User"]; u == "" || u == "root" {
		t.Errorf("User=%q: want a dedicated user", u)
	}
	if keys["LimitNOFILE"] == "" {
		t.Error("no LimitNOFILE")
	}
	if keys["KillSignal"] != "SIGTERM" {
		t.Errorf("KillSignal=%s: the node drains on SIGTERM", keys["KillSignal"])
	}
	if sd := keys["StateDirectory"]; sd == "" || !strings.HasPrefix(defaultAuditDir, filepath.Join("/var/lib", sd)+"/") {
		t.Errorf("StateDirectory=%s: want the folder of the default audit log %s, made for the user", sd, defaultAuditDir)
	}
	stop, err := time.ParseDuration(keys["TimeoutStopSec"])
	if err != nil || stop <= shutdownTimeout {
		t.Errorf("TimeoutStopSec=%s (%v): want more than the node's %v drain", keys["TimeoutStopSec"], err, shutdownTimeout)
	}
}
