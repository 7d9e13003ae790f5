// Whether an edit changes only how the words are written (capitals, punctuation, numbers as digits or words),
// not which words they are. A run's WER counts no error for such a change (Whisper's normalizer folds it), but
// the model learns to write the way the transcripts do: the editor says so while one types.
"use strict";

const NUMBER_WORDS = new Set(("zero one two three four five six seven eight nine ten eleven twelve thirteen " +
  "fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety " +
  "hundred thousand million billion percent point oh first second third fourth fifth sixth seventh eighth ninth " +
  "tenth half quarter").split(" "));

function styleWords(text) {
  return text.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim().split(" ").filter(Boolean);
}

function isNumberish(word) { return /^\p{N}+(st|nd|rd|th)?$/u.test(word) || NUMBER_WORDS.has(word); }

function sameWords(a, b) { return a.length === b.length && a.every((w, i) => w === b[i]); }

// The kinds of change ("capitals", "punctuation", "numbers") when `after` says the same words as `before`
// written another way; null when the words themselves changed, or nothing did.
function styleChange(before, after) {
  const squash = (s) => s.replace(/\s+/g, " ").trim();
  if (squash(before) === squash(after) || !after.trim() || !before.trim()) return null;
  const a = styleWords(before);
  const b = styleWords(after);
  const kinds = [];
  if (sameWords(a, b)) {
    const letters = (s) => s.replace(/[^\p{L}\p{N}]+/gu, " ").trim();
    if (letters(before) !== letters(after)) kinds.push("capitals");
    if (squash(before.toLowerCase()) !== squash(after.toLowerCase())) kinds.push("punctuation");
    return kinds.length ? kinds : null;
  }
  // Numbers: the same words once every number is left out, and one side writes digits where the other has words.
  const plain = (words) => words.filter((w) => !isNumberish(w));
  const digits = (words) => words.some((w) => /\p{N}/u.test(w));
  return sameWords(plain(a), plain(b)) && digits(a) !== digits(b) ? ["numbers"] : null;
}
