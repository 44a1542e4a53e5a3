// Package opencc converts between the written forms of Chinese (Simplified, Traditional, Hong Kong, Taiwan) with
// the OpenCC library (cgo), as a captions Translator.
package opencc

import "github.com/edge-sfu/sfu/captions"

// openCCConfig is OpenCC's configuration file for a conversion, "" when there is none.
func openCCConfig(from, to string) string {
	f, t := captions.ChineseScript(from), captions.ChineseScript(to)
	if f == "" || t == "" || f == t {
		return ""
	}
	return map[[2]string]string{
		{"s", "t"}: "s2t.json", {"s", "hk"}: "s2hk.json", {"s", "tw"}: "s2twp.json",
		{"t", "s"}: "t2s.json", {"t", "hk"}: "t2hk.json", {"t", "tw"}: "t2tw.json",
		{"hk", "s"}: "hk2s.json", {"hk", "t"}: "hk2t.json", {"hk", "tw"}: "s2twp.json",
		{"tw", "s"}: "tw2sp.json", {"tw", "t"}: "tw2t.json", {"tw", "hk"}: "t2hk.json",
	}[[2]string{f, t}]
}
