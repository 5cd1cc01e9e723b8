// Text from elsewhere (an endpoint's answer) made safe to print on a terminal: what could move the
// cursor, retitle the window, write the clipboard (OSC 52) or reorder what is shown never reaches it.

// Escape sequences are removed whole, so their parameters do not show up as stray text:
// CSI (ESC [ or U+009B) up to its final byte; OSC, DCS, SOS, PM and APC strings (ESC ] P X ^ _ or
// U+009D U+0090 U+0098 U+009E U+009F) up to BEL or ST, or to the next ESC or the end when
// unterminated; and any other ESC with the one character after it.
const SEQUENCES = /(?:\x1b\[|\x9b)[\x20-\x3f]*[\x40-\x7e]?|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[\s\S]?/g;
// Line breaks and tabs inside a field become a space: each field stays on its own line.
const BREAKS = /[\t\n\v\f\r\u0085\u2028\u2029]/g;
// What is left of C0, DEL, C1, and the bidi embeddings, overrides and isolates (U+202A–U+202E,
// U+2066–U+2069) that would show text in another order than it is written.
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

/** `s` with escape sequences and control characters removed and line breaks turned into spaces. */
export function safeText(s: string): string {
  return s.replace(SEQUENCES, '').replace(BREAKS, ' ').replace(CONTROLS, '');
}
