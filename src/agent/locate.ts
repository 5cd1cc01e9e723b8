// Where the agent is: the library to preload, and the socket a process's agent listens on.
import fs from 'node:fs';
import path from 'node:path';
import { withCode } from '../core/errors';

const PACKAGE_DIR = path.join(__dirname, '..', '..');

/** The file name of the agent in prebuilds/<platform>-<arch>/ (built with the addon otherwise). */
export const AGENT_PREBUILD = 'allocator-stats-agent.glibc.so';
const AGENT_BUILD = path.join('build', 'Release', 'allocator_stats_agent.so');

/**
 * The agent library for this system, as node-gyp-build finds the addon: a build from source
 * first, then the prebuild for this platform and architecture. Null when there is neither.
 */
export function agentPath(): string | null {
  const candidates = [path.join(PACKAGE_DIR, AGENT_BUILD), path.join(PACKAGE_DIR, 'prebuilds', `${process.platform}-${process.arch}`, AGENT_PREBUILD)];
  return candidates.find((file) => fs.existsSync(file)) ?? null;
}

/** agentPath(), or ERR_AGENT_NOT_FOUND saying how to get one. */
export function requireAgentPath(): string {
  const file = agentPath();
  if (file === null) {
    throw withCode(
      new Error(`allocator-stats has no agent library for ${process.platform}-${process.arch}: run \`npm rebuild allocator-stats\` to build it (it builds with the addon)`),
      'ERR_AGENT_NOT_FOUND',
    );
  }
  return file;
}

const SOCKET_NAME = /(^|\/)agent\.\d+\.sock$/;
// /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening.
const LISTENING = 0x10000;

/**
 * The socket the agent of process `pid` listens on, as a path this process can connect to; null
 * when it has none (no agent, not asked to listen, or another user's process). Found from the
 * process's own descriptors, so a stale socket file of a dead process is never taken for it.
 */
export function agentSocketOf(pid: number): string | null {
  let inodes: Set<string>;
  try {
    inodes = new Set(
      fs
        .readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? null;
          } catch {
            return null;
          }
        })
        .filter((i): i is string => i !== null),
    );
    if (inodes.size === 0) return null;
    for (const line of fs.readFileSync(`/proc/${pid}/net/unix`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 8) continue;
      const [, , , flags, , , inode, socketPath] = f;
      if (!inodes.has(inode) || !SOCKET_NAME.test(socketPath) || (parseInt(flags, 16) & LISTENING) === 0) continue;
      // The path as the process sees it; through its root when this process sees another tree
      // (a container, a private /tmp), if that path still fits a socket address.
      if (fs.existsSync(socketPath)) return socketPath;
      const viaRoot = `/proc/${pid}/root${socketPath}`;
      return Buffer.byteLength(viaRoot) < 108 ? viaRoot : socketPath;
    }
  } catch {
    return null;
  }
  return null;
}
