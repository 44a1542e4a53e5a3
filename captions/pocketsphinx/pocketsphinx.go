// Package pocketsphinx is the built-in English speech recognizer: CMU PocketSphinx (cgo) with the model Debian's
// pocketsphinx-en-us ships.
package pocketsphinx

import "runtime"

// Config says where the model is. The defaults are the files of Debian's pocketsphinx-en-us.
type Config struct {
	Model    string // acoustic model folder
	LM       string // language model (ignored with a grammar)
	Dict     string // pronunciation dictionary
	Grammar  string // a JSGF grammar that narrows what can be recognized; "" uses the language model
	Decoders int    // utterances recognized at once (default: the number of CPUs)
}

// Debian's pocketsphinx-en-us files.
const (
	DefaultModel = "/usr/share/pocketsphinx/model/en-us/en-us"
	DefaultLM    = "/usr/share/pocketsphinx/model/en-us/en-us.lm.bin"
	DefaultDict  = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"
)

func (c Config) withDefaults() Config {
	if c.Model == "" {
		c.Model = DefaultModel
	}
	if c.LM == "" {
		c.LM = DefaultLM
	}
	if c.Dict == "" {
		c.Dict = DefaultDict
	}
	if c.Decoders <= 0 {
		c.Decoders = runtime.NumCPU()
	}
	return c
}
