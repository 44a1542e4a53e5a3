package captions

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteWebVTT writes final captions as a WebVTT file (W3C WebVTT): one cue per caption, its text in lang when a
// translation into lang exists (lang "" or the spoken language: the original), with the speaker as a voice
// span (of class chat for a chat message). Cues are written in the order given.
func WriteWebVTT(w io.Writer, cues []Caption, lang string, speaker func(participantID string) string) error {
	var b strings.Builder
	b.WriteString("WEBVTT\n\n")
	for i, c := range cues {
		text := c.Text
		if t, ok := c.Translations[lang]; ok && lang != "" {
			text = t
		}
		text = strings.NewReplacer("-->", "→", "\n", " ", "&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(text)
		who := c.ParticipantID
		if speaker != nil {
			if name := speaker(c.ParticipantID); name != "" {
				who = name
			}
		}
		who = strings.NewReplacer(">", "", "&", "", "\n", " ").Replace(who)
		end := c.End
		if end <= c.Start {
			end = c.Start + time.Second
		}
		voice := "v" // a chat message is a voice span of class chat (WebVTT's <v.class name>)
		if c.Chat {
			voice = "v.chat"
		}
		fmt.Fprintf(&b, "%d\n%s --> %s\n<%s %s>%s\n\n", i+1, vttTime(c.Start), vttTime(end), voice, who, text)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// vttTime formats a duration as WebVTT's hh:mm:ss.ttt.
func vttTime(d time.Duration) string {
	ms := d.Milliseconds()
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}
