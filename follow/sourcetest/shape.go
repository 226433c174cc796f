package sourcetest

import "github.com/kanca/kanca/cdr"

// Shape is what a receiver must get right of a call's events whatever
// kanca missed of it: which events, for which number, from whom to whom,
// where it was sent, whether anyone answered.
type Shape struct {
	Type                              cdr.EventType
	Number, Caller, Callee, Direction string
	Destination, ResultDisposition    string
	Answered                          bool
	Callflow                          []string
}

// Shapes runs inputs through a tracker of the default dialplan and
// returns the shapes of the events it makes.
func Shapes(inputs []cdr.Input) []Shape {
	tr := cdr.NewTracker(cdr.DefaultConfig())
	var out []Shape
	for _, in := range inputs {
		for _, ev := range tr.Handle(in) {
			s := Shape{Type: ev.Type, Number: ev.Number, Caller: ev.Caller, Callee: ev.Callee, Direction: ev.Direction,
				Destination: ev.Destination, ResultDisposition: ev.ResultDisposition}
			if ev.CDR != nil {
				s.Answered = !ev.CDR.AnswerTime.IsZero()
				for _, st := range ev.CDR.Callflow {
					s.Callflow = append(s.Callflow, st.Callee+" "+st.Redirection)
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// AfterMenu is what a call's shapes become when kanca adopts it from a
// channel list once a menu it went through is behind it: no menu event,
// and a callflow from the number it arrived on straight to where it is.
func AfterMenu(full []Shape) []Shape {
	var out []Shape
	for _, s := range full {
		if s.Type == cdr.CallInitMenu {
			continue
		}
		if s.Callflow != nil {
			s.Callflow = []string{s.Callee + " " + cdr.RedirectedToExtension, s.Callflow[len(s.Callflow)-1]}
		}
		out = append(out, s)
	}
	return out
}
