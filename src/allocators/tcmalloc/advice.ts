// What the doctor advises when tcmalloc holds memory back.
import type { RetentionInput } from '../types';

export function tcmallocRetentionAdvice(input: RetentionInput): string[] {
  const { env, trimAdvice } = input;
  const advice: string[] = [];
  const rate = Number(env.TCMALLOC_RELEASE_RATE);
  if (!(rate >= 10)) {
    advice.push(`Raise tcmalloc's release rate: TCMALLOC_RELEASE_RATE=10 (now ${env.TCMALLOC_RELEASE_RATE ?? 'unset: 1'}) returns free pages to the OS faster.`);
  }
  if (trimAdvice) advice.push(`${trimAdvice} On tcmalloc a trim calls MallocExtension_ReleaseFreeMemory.`);
  return advice;
}
