import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { cacheKey } from '../util/hash.js';
import { LarvalError } from '../util/errors.js';
import { withLock } from '../util/lock.js';
import { cacheRoot, vmImagesDir } from '../util/paths.js';
import { progress } from '../util/progress.js';
import { moduleLoadOrder, moduleName, parseModulesDep } from '../kernel/modules.js';
import { type CpioEntry, withParentDirs, writeCpio } from './cpio.js';
import { buildGuestPrograms } from './guest-programs.js';
import { sharedLibraries } from './shared-libs.js';
import { makeGuestKeys } from './ssh-keys.js';
import { CHARON, pluginPaths, SWANCTL } from '../km/strongswan.js';

export interface GuestImage {
	/**
	 * The cpio to pass to QEMU's -initrd, uncompressed: under TCG, inflating
	 * it cost the boot ~0.25 s more than the kernel spends copying 12 MB.
	 */
	initrd: string;
	clientPrivateKey: string;
	hostPublicKey: string;
	key: string;
}

// Bump when the image layout changes in a way the inputs do not show.
const IMAGE_VERSION = '4';

const BUSYBOX = '/bin/busybox';
/**
 * Real programs that replace busybox applets of the same name.  bash is among
 * them because Debian's busybox-static shell prefers its own applets to PATH:
 * under ash, `ip` would run busybox's ip, which has no `xfrm`.
 */
const HOST_PROGRAMS: Record<string, string[]> = {
	'/bin/bash': ['/bin/bash', '/usr/bin/bash'],
	'/usr/bin/ip': ['/usr/bin/ip', '/bin/ip', '/sbin/ip', '/usr/sbin/ip'],
	'/usr/sbin/dropbear': ['/usr/sbin/dropbear'],
	// --firewall stateful (harness/net/firewall.ts)
	'/usr/sbin/nft': ['/usr/sbin/nft'],
};

export function findFirst(candidates: readonly string[]): string {
	const hit = candidates.find((c) => existsSync(c));
	if (!hit) throw new LarvalError(`none of ${candidates.join(', ')} exists: run \`make deps\``);
	return hit;
}

function walk(dir: string): string[] {
	const out: string[] = [];
	for (const name of readdirSync(dir).sort()) {
		const p = join(dir, name);
		if (lstatSync(p).isDirectory()) out.push(p, ...walk(p));
		else out.push(p);
	}
	return out;
}

function rootfsEntries(): CpioEntry[] {
	const root = join(vmImagesDir, 'rootfs');
	return walk(root).map((p): CpioEntry => {
		const guest = `/${relative(root, p)}`;
		const st = lstatSync(p);
		if (st.isDirectory()) return { kind: 'dir', path: guest, mode: st.mode & 0o7777 };
		if (st.isSymbolicLink()) return { kind: 'symlink', path: guest, target: readlinkSync(p) };
		return { kind: 'file', path: guest, mode: st.mode & 0o777, data: readFileSync(p) };
	});
}

async function busyboxEntries(skip: ReadonlySet<string>): Promise<CpioEntry[]> {
	if (!existsSync(BUSYBOX)) throw new LarvalError(`${BUSYBOX} is missing: install busybox-static (\`make deps\`)`);
	const list = await execa(BUSYBOX, ['--list-full']);
	const entries: CpioEntry[] = [{ kind: 'file', path: BUSYBOX, mode: 0o755, data: readFileSync(BUSYBOX) }];
	for (const rel of list.stdout.split('\n').filter(Boolean)) {
		const path = `/${rel}`;
		const name = rel.split('/').pop()!;
		if (path === BUSYBOX || skip.has(name)) continue;
		entries.push({ kind: 'symlink', path, target: BUSYBOX });
	}
	// The kernel runs /init from an initramfs; busybox init reads /etc/inittab.
	entries.push({ kind: 'symlink', path: '/init', target: BUSYBOX });
	return entries;
}

/** @skipLibs: libraries the image below already has. */
export async function hostProgramEntries(programs: Map<string, string>, skipLibs: ReadonlySet<string> = new Set()): Promise<CpioEntry[]> {
	const entries: CpioEntry[] = [];
	const libs = new Set<string>();
	for (const [guest, host] of programs) {
		entries.push({ kind: 'file', path: guest, mode: 0o755, data: readFileSync(host) });
		for (const lib of await sharedLibraries(host)) if (!skipLibs.has(lib)) libs.add(lib);
	}
	for (const lib of [...libs].sort()) {
		entries.push({ kind: 'file', path: lib, mode: 0o755, data: readFileSync(realpathSync(lib)) });
	}
	return entries;
}

/**
 * Host programs (names looked up on PATH, or paths) with the shared
 * libraries they load, as a cpio to put over the base image: each lands in
 * /usr/local/bin, which the guest searches first.
 */
export async function hostToolsOverlay(names: readonly string[]): Promise<Buffer> {
	const programs = new Map<string, string>();
	for (const name of names) {
		const host = name.includes('/') ? name : findOnPath(name);
		if (!host || !existsSync(host)) throw new LarvalError(`--with ${name}: no such program on this host${name.includes('/') ? '' : ` (PATH: ${process.env.PATH ?? ''})`}`);
		programs.set(`/usr/local/bin/${host.split('/').pop()!}`, realpathSync(host));
	}
	return writeCpio(withParentDirs(await hostProgramEntries(programs)));
}

/**
 * charon, swanctl and the plugins the generated strongswan.conf loads (they
 * are dlopen'ed, so ldd of charon does not list them), each at its Debian
 * path, with their libraries: an overlay only guests that run strongSwan
 * carry: 6 MB (mostly libsystemd and what it links, which Debian links
 * into libstrongswan) that every other boot would copy for nothing.
 */
let strongswanCpio: Promise<Buffer> | undefined;
export function strongswanOverlay(): Promise<Buffer> {
	return (strongswanCpio ??= buildStrongswanOverlay());
}

async function buildStrongswanOverlay(): Promise<Buffer> {
	// glibc dlopens libgcc_s for pthread_cancel(), which charon and swanctl call: without it they abort.
	const libgcc = findFirst(['/lib/x86_64-linux-gnu/libgcc_s.so.1', '/usr/lib/x86_64-linux-gnu/libgcc_s.so.1']);
	const files = [CHARON, SWANCTL, ...pluginPaths(), libgcc];
	const missing = files.filter((f) => !existsSync(f));
	if (missing.length) throw new LarvalError(`strongSwan is not installed on this host (missing ${missing.join(', ')}): run \`make deps\``);
	// libc, libcap, libgmp and the loader are in the base image already (bash, ip, dropbear): 2.7 MB less to copy at each boot.
	return writeCpio(withParentDirs(await hostProgramEntries(new Map(files.map((f) => [f, f])), await baseImageLibraries())));
}

/** The libraries the base image's host programs load: an overlay need not copy them again. */
export async function baseImageLibraries(): Promise<Set<string>> {
	const libs = new Set<string>();
	for (const candidates of Object.values(HOST_PROGRAMS)) for (const lib of await sharedLibraries(findFirst(candidates))) libs.add(lib);
	return libs;
}

function findOnPath(name: string): string | undefined {
	const dirs = (process.env.PATH ?? '').split(':').concat('/usr/sbin', '/sbin');
	return dirs.map((d) => join(d, name)).find((p) => existsSync(p) && statSync(p).isFile());
}

/**
 * Keeps the newest few base images (another clone may use an older one) and
 * drops combined initrds, which are cheap to remake, once their base is gone.
 */
function pruneImages(dir: string, keep: string): void {
	const bases = readdirSync(dir)
		.filter((d) => d.startsWith('base-') && !d.endsWith('.lock') && d !== keep)
		.map((d) => ({ d, t: statSync(join(dir, d)).mtimeMs }))
		.sort((a, b) => b.t - a.t);
	for (const { d } of bases.slice(2)) rmSync(join(dir, d), { recursive: true, force: true });
	const day = 24 * 3600_000;
	for (const f of readdirSync(dir)) {
		if (f.startsWith('combined-') && Date.now() - statSync(join(dir, f)).mtimeMs > day) rmSync(join(dir, f), { force: true });
	}
}

function inputKey(parts: Array<readonly [string, string | Uint8Array]>): string {
	return cacheKey([['image', IMAGE_VERSION], ...parts]);
}

/**
 * The base guest image, shared by every kernel: busybox, ip, dropbear, the
 * guest programs and vm-images/rootfs.  Rebuilt only when one of them changes.
 */
export async function buildBaseImage(): Promise<GuestImage> {
	const guestPrograms = await buildGuestPrograms();
	const hostPrograms = new Map<string, string>();
	for (const [guest, candidates] of Object.entries(HOST_PROGRAMS)) hostPrograms.set(guest, findFirst(candidates));
	const rootfs = rootfsEntries();
	const key = inputKey([
		['busybox', readFileSync(BUSYBOX)],
		...[...hostPrograms, ...guestPrograms].map(([g, h]) => [g, readFileSync(h)] as const),
		...rootfs.map((e) => [e.path, e.kind === 'file' ? e.data : e.kind === 'symlink' ? e.target : `dir${e.mode}`] as const),
	]);
	const dir = join(cacheRoot(), 'images', `base-${key}`);
	const metaPath = join(dir, 'image.json');
	mkdirSync(join(cacheRoot(), 'images'), { recursive: true });
	return withLock(dir, 5 * 60_000, async () => {
		if (existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as GuestImage;
		progress(`guest image: building base-${key}`);
		mkdirSync(dir, { recursive: true });
		const keys = await makeGuestKeys(join(dir, 'host_key'));
		const skip = new Set([...hostPrograms.keys()].map((p) => p.split('/').pop()!).concat('sh'));
		const entries: CpioEntry[] = [
			{ kind: 'dir', path: '/root', mode: 0o700 },
			{ kind: 'dir', path: '/root/.ssh', mode: 0o700 },
			{ kind: 'file', path: '/root/.ssh/authorized_keys', mode: 0o600, data: Buffer.from(`${keys.authorizedKey}\n`) },
			{ kind: 'dir', path: '/proc', mode: 0o555 },
			{ kind: 'dir', path: '/sys', mode: 0o555 },
			{ kind: 'dir', path: '/dev', mode: 0o755 },
			{ kind: 'dir', path: '/tmp', mode: 0o1777 },
			{ kind: 'dir', path: '/run', mode: 0o755 },
			{ kind: 'file', path: '/etc/dropbear/host_key', mode: 0o600, data: keys.hostKey },
			...(await busyboxEntries(skip)),
			...(await hostProgramEntries(new Map([...hostPrograms, ...guestPrograms]))),
			{ kind: 'symlink', path: '/bin/sh', target: 'bash' },
			...rootfs,
		];
		const initrd = join(dir, 'initrd.cpio');
		writeFileSync(`${initrd}.tmp`, writeCpio(withParentDirs(entries)));
		renameSync(`${initrd}.tmp`, initrd);
		const image: GuestImage = { initrd, clientPrivateKey: keys.clientPrivateKey, hostPublicKey: keys.hostPublicKey, key };
		writeFileSync(metaPath, JSON.stringify(image, null, '\t'));
		pruneImages(join(cacheRoot(), 'images'), `base-${key}`);
		return image;
	});
}

/**
 * Modules of a distro kernel as a second cpio, decompressed (busybox insmod
 * reads plain .ko) and numbered in dependency order for the boot script.
 */
export async function buildModuleOverlay(modulesRoot: string, release: string, wanted: readonly string[]): Promise<Buffer> {
	const modDir = join(modulesRoot, 'lib/modules', release);
	const dep = parseModulesDep(readFileSync(join(modDir, 'modules.dep'), 'utf8'));
	const builtin = new Set(
		readFileSync(join(modDir, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map(moduleName),
	);
	const order = moduleLoadOrder(dep, builtin, wanted);
	if (order.missing.length) {
		throw new LarvalError(`kernel ${release} has neither module nor built-in for: ${order.missing.join(', ')}`);
	}
	const entries: CpioEntry[] = [];
	const names: string[] = [];
	for (const [i, rel] of order.paths.entries()) {
		const src = join(modDir, rel);
		const name = `${String(i).padStart(2, '0')}-${moduleName(rel)}.ko`;
		const data = rel.endsWith('.xz')
			? (await execa('xz', ['-dc', src], { encoding: 'buffer' })).stdout
			: rel.endsWith('.zst')
				? (await execa('zstd', ['-dc', src], { encoding: 'buffer' })).stdout
				: readFileSync(src);
		entries.push({ kind: 'file', path: `/lib/modules/larval/${name}`, mode: 0o644, data });
		names.push(name);
	}
	entries.push({ kind: 'file', path: '/lib/modules/larval/load-order', mode: 0o644, data: Buffer.from(`${names.join('\n')}\n`) });
	return writeCpio(withParentDirs(entries));
}

/**
 * The initrd for a boot: the base image, plus overlays concatenated after it
 * (the kernel unpacks concatenated archives in order).  Cached by content.
 */
export function combineInitrd(base: GuestImage, overlays: ReadonlyArray<readonly [string, Buffer]>): string {
	if (overlays.length === 0) return base.initrd;
	const key = inputKey([['base', base.key], ...overlays]);
	const path = join(cacheRoot(), 'images', `combined-${key}.cpio`);
	if (!existsSync(path) || statSync(path).size === 0) {
		const data = Buffer.concat([readFileSync(base.initrd), ...overlays.map(([, b]) => b)]);
		writeFileSync(`${path}.${process.pid}`, data);
		renameSync(`${path}.${process.pid}`, path);
	}
	return path;
}
