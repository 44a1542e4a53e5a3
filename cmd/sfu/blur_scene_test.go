package main

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"os"
)

// The synthetic camera of the background blur tests: a person's head and shoulders over a sharp checkerboard,
// written as a .y4m file that Chromium's fake camera plays (--use-file-for-fake-video-capture).

// blurScene is the picture the fake camera shows, and the regions the tests measure in it.
type blurScene struct {
	img        *image.RGBA
	background []image.Rectangle // well outside the person: checkerboard
	foreground []image.Rectangle // well inside the person: face and shirt
}

const (
	sceneW, sceneH = 1280, 720
	checkerPx      = 12 // the background's squares
)

// inEllipse says whether (x, y) is inside the ellipse of centre (cx, cy) and radii rx, ry.
func inEllipse(x, y, cx, cy, rx, ry int) bool {
	dx, dy := float64(x-cx)/float64(rx), float64(y-cy)/float64(ry)
	return dx*dx+dy*dy <= 1
}

// newBlurScene draws the person: hair and a face with eyes and a mouth, a neck, shoulders in a dark shirt with
// fine stripes (detail that blur would wash out, so that a blurred person shows), over a black and white
// checkerboard.
func newBlurScene() blurScene {
	img := image.NewRGBA(image.Rect(0, 0, sceneW, sceneH))
	skin := color.RGBA{222, 170, 138, 255}
	hair := color.RGBA{52, 36, 28, 255}
	for y := 0; y < sceneH; y++ {
		for x := 0; x < sceneW; x++ {
			c := color.RGBA{38, 38, 38, 255}
			if (x/checkerPx+y/checkerPx)%2 == 0 {
				c = color.RGBA{226, 226, 226, 255}
			}
			// Shoulders and torso: from y 470 down, widening from 300 px to the frame's bottom at 760 px.
			if y >= 470 {
				half := 150 + (y-470)*230/250
				if y < 530 { // rounded shoulders
					half = 150 + (y-470)*230/250 + (y-470)*2
				}
				if half > 400 {
					half = 400
				}
				if x >= sceneW/2-half && x < sceneW/2+half {
					c = color.RGBA{40, 52, 96, 255}
					if (x/6)%2 == 0 {
						c = color.RGBA{70, 84, 132, 255}
					}
				}
			}
			// Neck.
			if y >= 400 && y < 490 && x >= 590 && x < 690 {
				c = skin
			}
			// Head: a face under hair.
			if inEllipse(x, y, 640, 300, 118, 150) {
				c = skin
				if y < 220 || (y < 300 && !inEllipse(x, y, 640, 310, 104, 140)) {
					c = hair
				}
			}
			for _, ex := range []int{596, 684} {
				if inEllipse(x, y, ex, 300, 20, 10) {
					c = color.RGBA{245, 245, 245, 255}
				}
				if inEllipse(x, y, ex, 300, 8, 8) {
					c = color.RGBA{30, 30, 40, 255}
				}
				if y >= 276 && y < 282 && x >= ex-22 && x < ex+22 {
					c = hair // eyebrows
				}
			}
			if inEllipse(x, y, 640, 392, 36, 12) {
				c = color.RGBA{168, 72, 72, 255}
			}
			if x >= 634 && x < 646 && y >= 310 && y < 360 {
				c = color.RGBA{200, 148, 118, 255} // the nose's shadow
			}
			img.SetRGBA(x, y, c)
		}
	}
	return blurScene{
		img: img,
		background: []image.Rectangle{
			image.Rect(40, 40, 240, 240), image.Rect(1040, 40, 1240, 240),
			image.Rect(40, 420, 200, 680), image.Rect(1080, 420, 1240, 680),
		},
		foreground: []image.Rectangle{
			image.Rect(580, 250, 700, 420), // eyes, nose, mouth
			image.Rect(520, 600, 760, 700), // the shirt's stripes
		},
	}
}

// writeY4M writes frames copies of img as a YUV 4:2:0 .y4m file at 30 frames per second.
func writeY4M(path string, img *image.RGBA, frames int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	b := img.Bounds()
	width, height := b.Dx(), b.Dy()
	y := make([]byte, width*height)
	u := make([]byte, width*height/4)
	v := make([]byte, width*height/4)
	for py := 0; py < height; py++ {
		for px := 0; px < width; px++ {
			c := img.RGBAAt(px, py)
			yy, _, _ := color.RGBToYCbCr(c.R, c.G, c.B)
			y[py*width+px] = yy
		}
	}
	for py := 0; py < height/2; py++ {
		for px := 0; px < width/2; px++ {
			var r, g, bl int
			for _, d := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
				c := img.RGBAAt(2*px+d[0], 2*py+d[1])
				r, g, bl = r+int(c.R), g+int(c.G), bl+int(c.B)
			}
			_, cb, cr := color.RGBToYCbCr(uint8(r/4), uint8(g/4), uint8(bl/4))
			u[py*width/2+px], v[py*width/2+px] = cb, cr
		}
	}
	fmt.Fprintf(w, "YUV4MPEG2 W%d H%d F30:1 Ip A1:1 C420jpeg\n", width, height)
	for i := 0; i < frames; i++ {
		w.WriteString("FRAME\n")
		w.Write(y)
		w.Write(u)
		w.Write(v)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
