package signaling

import "net/http"

// pagePolicy is the Content-Security-Policy of the browser client's pages and files. The pages load only their
// own script and style sheet (no inline code, no eval; workers only from this node: end-to-end encryption's
// frame transforms run in one, e2ee-worker.js), open WebSockets to this node or, in a
// cluster, to another node of the region (hence ws: and wss:), show media from MediaStreams and save the
// transcript through a blob: link; nothing may frame them. 'wasm-unsafe-eval' lets them compile WebAssembly (the
// background blur's segmentation model, served by this node under SegmentationPath): it allows no eval of
// JavaScript.
const pagePolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src 'self' ws: wss:; " +
	"img-src 'self' data: blob:; media-src 'self' blob:; worker-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// withPageHeaders gives what h serves the client's security headers: the policy above, no framing (for
// browsers without frame-ancestors), no Referer (a page's address may name its room), no type sniffing.
func withPageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", pagePolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}
