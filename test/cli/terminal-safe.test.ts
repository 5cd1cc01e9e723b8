// safeText(): remote text printed on a terminal cannot drive it.
import { safeText } from '../../src/cli/terminal-safe';

describe('safeText', () => {
  test('removes escape sequences whole: titles, clipboard writes, screen clears, colours', () => {
    expect(safeText('a\x1b]0;owned\x07b')).toBe('ab');
    expect(safeText('a\x1b]52;c;ZWNobyBoaQ==\x07b')).toBe('ab');
    expect(safeText('a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b')).toBe('alinkb');
    expect(safeText('\x1b[2J\x1b[H\x1b[31mred\x1b[0m')).toBe('red');
    expect(safeText('a\x9b2Jb\x9d0;t\x9cc')).toBe('abc');
    expect(safeText('a\x1bPq#0\x1b\\b')).toBe('ab');
    expect(safeText('a\x1bcb')).toBe('ab');
    // Unterminated: nothing after it can still be read as part of a sequence by the terminal.
    expect(safeText('a\x1b]0;title')).toBe('a');
    expect(safeText('end\x1b')).toBe('end');
  });

  test('line breaks become spaces; other C0, DEL and C1 controls and bidi controls go', () => {
    expect(safeText('one\ntwo\r\nthree\tfour')).toBe('one two  three four');
    expect(safeText('a\x00\x07\x08\x7f\x85\x80\x8eb')).toBe('a b');
    expect(safeText('user\u202etxt.exe\u202c \u2066x\u2069 \u202a\u202b\u202d')).toBe('usertxt.exe x ');
  });

  test('keeps ordinary text, including non-ASCII', () => {
    const text = 'RSS 12.0 MiB → 40.0 MiB — glibc arenas, Größe, 日本語, emoji 🧠';
    expect(safeText(text)).toBe(text);
  });
});
