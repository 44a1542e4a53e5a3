package signaling

import (
	"io/fs"
	"net/http"
)

// SegmentationPath is where the node serves the background-blur segmentation model's files (the npm package
// @mediapipe/selfie_segmentation: its script, WebAssembly and model), for the browser client's blur.js.
const SegmentationPath = "/static/vendor/segmentation/"

// routeSegmentation serves the files of fsys under SegmentationPath. nil: the node has no model, the path answers
// 404 and the page says background blur is unavailable.
func (srv *Server) routeSegmentation(fsys fs.FS) {
	if fsys == nil {
		return
	}
	srv.mux.Handle("GET "+SegmentationPath, withPageHeaders(http.StripPrefix(SegmentationPath,
		http.FileServerFS(filesOnly{fsys}))))
}

// filesOnly is an fs.FS that opens files and nothing else: a folder is not there, so the file server lists
// none and serves no index.html of one. A name that leaves the tree ("..") is refused by fs.ValidPath, as
// every fs.FS must.
type filesOnly struct{ fsys fs.FS }

func (f filesOnly) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	file, err := f.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	info, err := file.Stat()
	if err != nil {
		_ = file.Close()
		return nil, err
	}
	if info.IsDir() {
		_ = file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, nil
}
