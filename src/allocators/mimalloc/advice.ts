// What the doctor advises when mimalloc holds memory back.
import type { RetentionInput } from '../types';

export function mimallocRetentionAdvice(input: RetentionInput): string[] {
  const { env, trimAdvice, version } = input;
  const advice: string[] = [];
  // mimalloc before 2.1 reads the delay as MIMALLOC_DECOMMIT_DELAY; 2.1 renamed it MIMALLOC_PURGE_DELAY.
  const delay = version !== null && /^(1\.|2\.0\.)/.test(version) ? 'MIMALLOC_DECOMMIT_DELAY' : 'MIMALLOC_PURGE_DELAY';
  if (env[delay] !== '0') {
    advice.push(`Purge freed pages sooner: ${delay}=0 (now ${env[delay] ?? 'unset, the default delay'}).`);
  }
  advice.push("mimalloc's heaps belong to threads: memory freed by idle worker threads stays with them until they allocate, collect or exit; end idle workers of a pool.");
  if (trimAdvice) advice.push(trimAdvice);
  return advice;
}
