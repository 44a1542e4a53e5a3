package denoise

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/edge-sfu/sfu/media/audio"
)

// RNNoisePackage is the npm package whose WebAssembly build of RNNoise this file runs.
const RNNoisePackage = "@echogarden/rnnoise-wasm"

// RNNoise runs RNNoise (a recurrent network that suppresses noise in 10 ms frames of 48 kHz audio) from the
// WebAssembly build that the npm package ships, in wazero: pure Go, no cgo. The module is compiled once; each
// stream gets an instance of its own, with its own memory.
type RNNoise struct {
	rt      wazero.Runtime
	mod     wazero.CompiledModule
	exports rnnoiseExports
	mu      sync.Mutex
	closed  bool
}

// rnnoiseExports are the minified export names of the functions used, read from the package's JavaScript glue.
type rnnoiseExports struct {
	memory, ctors, create, destroy, process, malloc, free string
}

// LoadRNNoise compiles rnnoise.wasm from dir (the npm package's folder) and maps its exports and imports from
// rnnoise.js beside it.
func LoadRNNoise(ctx context.Context, dir string) (*RNNoise, error) {
	wasm, err := os.ReadFile(filepath.Join(dir, "rnnoise.wasm"))
	if err != nil {
		return nil, fmt.Errorf("rnnoise: %w (install the npm package %s: make deps)", err, RNNoisePackage)
	}
	glue, err := os.ReadFile(filepath.Join(dir, "rnnoise.js"))
	if err != nil {
		return nil, fmt.Errorf("rnnoise: %w (install the npm package %s: make deps)", err, RNNoisePackage)
	}
	exp, imports, err := mapGlue(string(glue))
	if err != nil {
		return nil, err
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithMemoryLimitPages(1024).WithCloseOnContextDone(false))
	host := rt.NewHostModuleBuilder(imports.module)
	for name, fn := range imports.funcs {
		switch fn {
		case "_emscripten_resize_heap":
			host.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(resizeHeap), []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).Export(name)
		case "__emscripten_memcpy_js":
			host.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(memcpyJS), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, nil).Export(name)
		default:
			_ = rt.Close(ctx)
			return nil, fmt.Errorf("rnnoise: the module imports %s, which this loader does not provide", fn)
		}
	}
	if _, err := host.Instantiate(ctx); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("rnnoise host functions: %w", err)
	}
	mod, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("rnnoise compile: %w", err)
	}
	return &RNNoise{rt: rt, mod: mod, exports: exp}, nil
}

type glueImports struct {
	module string
	funcs  map[string]string // import name -> the Emscripten function it stands for
}

var (
	reExport  = regexp.MustCompile(`var (_\w+|___wasm_call_ctors)=[^;]*?wasmExports\["(\w+)"\]`)
	reMemory  = regexp.MustCompile(`wasmMemory=wasmExports\["(\w+)"\]`)
	reImports = regexp.MustCompile(`var wasmImports=\{([^}]*)\}`)
	reImpPair = regexp.MustCompile(`(\w+):(\w+)`)
	reImpMod  = regexp.MustCompile(`function getWasmImports\(\)\{return\{(\w+):wasmImports\}`)
)

// mapGlue reads which minified export is which function, and which imports the module wants, from the
// Emscripten glue. The names change with each build, so they are never hard-coded.
func mapGlue(js string) (rnnoiseExports, glueImports, error) {
	byName := map[string]string{}
	for _, m := range reExport.FindAllStringSubmatch(js, -1) {
		byName[m[1]] = m[2]
	}
	var e rnnoiseExports
	if m := reMemory.FindStringSubmatch(js); m != nil {
		e.memory = m[1]
	}
	e.ctors = byName["___wasm_call_ctors"]
	e.create, e.destroy = byName["_rnnoise_create"], byName["_rnnoise_destroy"]
	e.process = byName["_rnnoise_process_frame"]
	e.malloc, e.free = byName["_malloc"], byName["_free"]
	for name, v := range map[string]string{"memory": e.memory, "rnnoise_create": e.create, "rnnoise_destroy": e.destroy,
		"rnnoise_process_frame": e.process, "malloc": e.malloc, "free": e.free} {
		if v == "" {
			return e, glueImports{}, fmt.Errorf("rnnoise: the JavaScript glue does not say which export is %s", name)
		}
	}
	imp := glueImports{funcs: map[string]string{}}
	if m := reImpMod.FindStringSubmatch(js); m != nil {
		imp.module = m[1]
	}
	m := reImports.FindStringSubmatch(js)
	if m == nil || imp.module == "" {
		return e, imp, errors.New("rnnoise: the JavaScript glue does not list the module's imports")
	}
	for _, p := range reImpPair.FindAllStringSubmatch(m[1], -1) {
		imp.funcs[p[1]] = p[2]
	}
	return e, imp, nil
}

// resizeHeap is emscripten_resize_heap(size): grow the memory to at least size bytes; 1 on success. Host
// functions take their arguments on a stack of uint64s (no reflection, no allocation per call).
func resizeHeap(_ context.Context, m api.Module, stack []uint64) {
	size := api.DecodeU32(stack[0])
	mem := m.Memory()
	stack[0] = 1
	if size <= mem.Size() {
		return
	}
	if _, ok := mem.Grow((size - mem.Size() + 65535) / 65536); !ok {
		stack[0] = 0
	}
}

// memcpyJS is _emscripten_memcpy_js(dst, src, n): memmove within the module's memory.
func memcpyJS(_ context.Context, m api.Module, stack []uint64) {
	dst, src, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	mem := m.Memory()
	from, ok1 := mem.Read(src, n)
	to, ok2 := mem.Read(dst, n)
	if ok1 && ok2 {
		copy(to, from)
	}
}

// Close releases the runtime; the denoisers made from it must be closed first.
func (e *RNNoise) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	return e.rt.Close(ctx)
}

// New makes a denoiser for one stream.
func (e *RNNoise) New() (audio.Processor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("rnnoise: engine closed")
	}
	ctx := context.Background()
	m, err := e.rt.InstantiateModule(ctx, e.mod, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, fmt.Errorf("rnnoise instance: %w", err)
	}
	d := &rnnoiseDenoiser{m: m, mem: m.Memory(), process: m.ExportedFunction(e.exports.process),
		destroy: m.ExportedFunction(e.exports.destroy), free: m.ExportedFunction(e.exports.free)}
	fail := func(err error) (audio.Processor, error) {
		_ = m.Close(ctx)
		return nil, fmt.Errorf("rnnoise instance: %w", err)
	}
	if d.mem == nil || d.process == nil || d.destroy == nil || d.free == nil {
		return fail(errors.New("missing exports"))
	}
	if e.exports.ctors != "" {
		if f := m.ExportedFunction(e.exports.ctors); f != nil {
			if _, err := f.Call(ctx); err != nil {
				return fail(err)
			}
		}
	}
	res, err := m.ExportedFunction(e.exports.create).Call(ctx, 0) // 0: the built-in model
	if err != nil || res[0] == 0 {
		return fail(fmt.Errorf("rnnoise_create: %v", err))
	}
	d.state = res[0]
	malloc := m.ExportedFunction(e.exports.malloc)
	for _, p := range []*uint64{&d.in, &d.out} {
		res, err := malloc.Call(ctx, audio.FrameSamples*4)
		if err != nil || res[0] == 0 {
			return fail(fmt.Errorf("malloc: %v", err))
		}
		*p = res[0]
	}
	return d, nil
}

type rnnoiseDenoiser struct {
	m                      api.Module
	mem                    api.Memory
	process, destroy, free api.Function
	state, in, out         uint64
	stack                  [3]uint64
}

// Process denoises 10 ms. RNNoise takes floats at the scale of 16-bit samples.
func (d *rnnoiseDenoiser) Process(frame []int16) error {
	if len(frame) != audio.FrameSamples {
		return fmt.Errorf("rnnoise: frame of %d samples, want %d", len(frame), audio.FrameSamples)
	}
	in, ok := d.mem.Read(uint32(d.in), audio.FrameSamples*4)
	if !ok {
		return errors.New("rnnoise: input buffer outside memory")
	}
	for i, v := range frame {
		binary.LittleEndian.PutUint32(in[4*i:], math.Float32bits(float32(v)))
	}
	d.stack = [3]uint64{d.state, d.out, d.in}
	if err := d.process.CallWithStack(context.Background(), d.stack[:]); err != nil {
		return fmt.Errorf("rnnoise_process_frame: %w", err)
	}
	out, ok := d.mem.Read(uint32(d.out), audio.FrameSamples*4)
	if !ok {
		return errors.New("rnnoise: output buffer outside memory")
	}
	for i := range frame {
		v := math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:]))
		frame[i] = int16(max(-32768, min(32767, math.Round(float64(v)))))
	}
	return nil
}

// Close frees the instance.
func (d *rnnoiseDenoiser) Close() error {
	ctx := context.Background()
	_, _ = d.destroy.Call(ctx, d.state)
	return d.m.Close(ctx)
}
