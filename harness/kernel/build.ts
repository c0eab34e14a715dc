import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { cacheKey } from '../util/hash.js';
import { LarvalError, tailLines } from '../util/errors.js';
import { withLock } from '../util/lock.js';
import { cacheRoot, kernelPatchesDir } from '../util/paths.js';
import { progress } from '../util/progress.js';
import { droppedOptions, fragmentPaths, parseConfig, readFragments } from './config.js';
import { defaultLine, type KernelLine } from './line.js';
import { applySeries, loadSeries, type Patch } from './series.js';
import { findKernelSource, type KernelSource } from './source.js';

/** stock: the Debian source as shipped; patched: with the line's series. */
export type BuiltVariant = 'stock' | 'patched';

export interface KernelBuildOptions {
	variant: BuiltVariant;
	/** Which source package and series; the default line unless told. */
	line?: KernelLine;
	/** Config flavour: base.config, plus `${config}.config` unless 'base'. */
	config?: string;
	/** Use only the first N patches of the series (bisecting). */
	seriesPrefix?: number;
	jobs?: number;
	timeoutMs?: number;
}

export interface BuiltKernel {
	variant: BuiltVariant;
	/** The line's id; absent in cache entries made before lines (all 6.12). */
	line?: string;
	config: string;
	key: string;
	dir: string;
	bzImage: string;
	release: string;
	patches: string[];
	/** Seconds the build took when it ran; a cache hit reports the original. */
	buildSeconds: number;
	cached: boolean;
}

// Bump when the way a tree is built changes, so old cache entries are not reused.
const BUILDER_VERSION = '1';
// stock, patched, and the previous patched: enough for a rebuild to hit ccache.
const KEEP_PER_CONFIG = 3;

function buildKey(packageVersion: string, patches: readonly Patch[], fragments: readonly string[]): string {
	return cacheKey([
		['builder', BUILDER_VERSION],
		['source', packageVersion],
		...patches.map((p) => [`patch:${p.name}`, p.content] as const),
		...fragments.map((f) => [`config:${f.split('/').pop()}`, readFileSync(f)] as const),
	]);
}

/**
 * Runs a command with its output appended to @log.  coreutils timeout puts it
 * in a process group of its own and signals that whole group, on time-out
 * and when execa's cleanup ends it as we exit: make's compilers die with it
 * instead of running on.
 */
export async function runLogged(cmd: string, args: string[], cwd: string, log: NodeJS.WritableStream, env: Record<string, string>, timeoutMs: number): Promise<void> {
	log.write(`$ ${cmd} ${args.join(' ')}\n`);
	const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
	const p = execa('timeout', ['--kill-after=10', String(seconds), cmd, ...args], {
		cwd,
		env,
		reject: false,
		all: true,
		// A backstop should timeout itself hang.
		timeout: timeoutMs + 30_000,
		stdin: 'ignore',
	});
	p.all?.pipe(log, { end: false });
	const r = await p;
	if (r.timedOut || r.exitCode === 124 || r.exitCode === 137) throw new Error(`${cmd} timed out after ${seconds} s`);
	if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.exitCode}`);
}

/** A source tree and its out-of-tree build directory, side by side in @dir, and what every command on them shares. */
export interface BuildTree {
	dir: string;
	src: string;
	out: string;
	log: NodeJS.WritableStream;
	env: Record<string, string>;
	ccache: boolean;
}

export async function openBuildTree(dir: string, log: NodeJS.WritableStream): Promise<BuildTree> {
	const ccache = (await execa('sh', ['-c', 'command -v ccache'], { reject: false, timeout: 10_000 })).exitCode === 0;
	const env: Record<string, string> = {
		ARCH: 'x86_64',
		// Relative paths in ccache's hash let two trees laid out alike (DIR/src, DIR/build) share objects.
		CCACHE_BASEDIR: dir,
		KBUILD_BUILD_TIMESTAMP: '1970-01-01',
		KBUILD_BUILD_USER: 'larval',
		KBUILD_BUILD_HOST: 'larval',
	};
	return { dir, src: join(dir, 'src'), out: join(dir, 'build'), log, env, ccache };
}

export function makeTree(tree: BuildTree, args: string[], timeoutMs: number): Promise<void> {
	return runLogged('make', ['-C', tree.src, `O=${tree.out}`, ...(tree.ccache ? ['CC=ccache gcc'] : []), ...args], tree.dir, tree.log, tree.env, timeoutMs);
}

export async function unpackSource(tree: BuildTree, source: KernelSource, timeoutMs: number): Promise<void> {
	mkdirSync(tree.src, { recursive: true });
	mkdirSync(tree.out, { recursive: true });
	await runLogged('tar', ['-xf', source.tarball, '--strip-components=1', '-C', tree.src], tree.dir, tree.log, tree.env, timeoutMs);
}

/**
 * tinyconfig plus the fragments; an option Kconfig silently dropped fails
 * it, unless @folded says this tree's Kconfig made it part of another that
 * is set.
 */
export async function configureTree(tree: BuildTree, fragments: readonly string[], timeoutMs: number, folded: Readonly<Record<string, string>> = {}): Promise<void> {
	await makeTree(tree, ['tinyconfig'], timeoutMs);
	await runLogged(join(tree.src, 'scripts/kconfig/merge_config.sh'), ['-m', '-O', tree.out, join(tree.out, '.config'), ...fragments], tree.dir, tree.log, tree.env, timeoutMs);
	await makeTree(tree, ['olddefconfig'], timeoutMs);
	const dropped = droppedOptions(readFragments(fragments), parseConfig(readFileSync(join(tree.out, '.config'), 'utf8')), folded);
	if (dropped.length) {
		throw new LarvalError(
			`Kconfig dropped options the fragments ask for (unmet dependencies?):\n` +
				dropped.map((d) => `  ${d.name}=${d.value}`).join('\n'),
		);
	}
}

export async function makeBzImage(tree: BuildTree, jobs: number, timeoutMs: number): Promise<{ bzImage: string; release: string }> {
	await makeTree(tree, [`-j${jobs}`, 'bzImage'], timeoutMs);
	return {
		bzImage: join(tree.out, 'arch/x86/boot/bzImage'),
		release: readFileSync(join(tree.out, 'include/config/kernel.release'), 'utf8').trim(),
	};
}

/** Whether a cached build has patches; unreadable metadata counts as patched, the kind that churns. */
function hasPatches(dir: string): boolean {
	try {
		return (JSON.parse(readFileSync(join(dir, 'kernel.json'), 'utf8')) as { patches?: unknown[] }).patches?.length !== 0;
	} catch {
		return true;
	}
}

/** The line infix of cache directory @name of @config (`base-7.3-KEY`: `7.3-`; `base-KEY`: none). */
export function cacheInfixOf(name: string, config: string): string {
	return /^(\d+\.\d+-)[0-9a-f]+$/.exec(name.slice(config.length + 1))?.[1] ?? '';
}

/**
 * Drops older builds of the same config, line and kind (patched or not),
 * so that iterating on one line's series never evicts the stock build it
 * is compared with, nor the other line's builds.
 */
function pruneOldBuilds(kernelsDir: string, config: string, infix: string, keep: string): void {
	const patched = hasPatches(join(kernelsDir, keep));
	const olds = readdirSync(kernelsDir)
		.filter((d) => d.startsWith(`${config}-`) && cacheInfixOf(d, config) === infix && d !== keep && !d.endsWith('.lock'))
		.filter((d) => hasPatches(join(kernelsDir, d)) === patched)
		.map((d) => ({ d, t: statSync(join(kernelsDir, d)).mtimeMs }))
		.sort((a, b) => b.t - a.t)
		.slice(KEEP_PER_CONFIG - 1);
	for (const { d } of olds) rmSync(join(kernelsDir, d), { recursive: true, force: true });
}

/**
 * Builds (or finds in the cache) a bzImage from the line's Debian source
 * package, its series and the config fragments.  The key covers all
 * three, so an unchanged input never rebuilds and a changed one never
 * reuses a stale tree.
 */
export async function buildKernel(opts: KernelBuildOptions): Promise<BuiltKernel> {
	const config = opts.config ?? 'base';
	const line = opts.line ?? defaultLine();
	const source = await findKernelSource(line);
	let patches = opts.variant === 'stock' ? [] : loadSeries(line.seriesDir);
	if (opts.seriesPrefix !== undefined) patches = patches.slice(0, opts.seriesPrefix);
	const fragments = fragmentPaths(join(kernelPatchesDir, 'config'), config);
	const key = buildKey(source.packageVersion, patches, fragments);
	// Named by content, not by variant: with an empty series (or a prefix of
	// zero patches) `patched` is the same tree as `stock` and shares its build.
	const prefix = `${config}-${line.cacheInfix}`;
	const kernelsDir = join(cacheRoot(), 'kernels');
	const name = `${prefix}${key}`;
	const dir = join(kernelsDir, name);
	const metaPath = join(dir, 'kernel.json');
	mkdirSync(kernelsDir, { recursive: true });

	const timeoutMs = opts.timeoutMs ?? 60 * 60_000;
	return withLock(dir, timeoutMs, async () => {
		if (existsSync(metaPath)) {
			const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as BuiltKernel;
			return { ...meta, variant: opts.variant, line: line.id, cached: true };
		}
		rmSync(dir, { recursive: true, force: true });
		mkdirSync(dir, { recursive: true });
		const logPath = join(dir, 'build.log');
		const log = createWriteStream(logPath);
		const started = Date.now();
		const tree = await openBuildTree(dir, log);
		try {
			progress(`kernel ${name}: unpacking ${source.tarball}`);
			await unpackSource(tree, source, timeoutMs);
			if (patches.length) {
				progress(`kernel ${name}: applying ${patches.length} patch(es)`);
				await applySeries(tree.src, patches);
			}
			progress(`kernel ${name}: configuring (tinyconfig + ${fragments.map((f) => f.split('/').pop()).join(' + ')})`);
			await configureTree(tree, fragments, timeoutMs, line.folded);
			const jobs = opts.jobs ?? availableParallelism();
			progress(`kernel ${name}: building bzImage with ${jobs} job(s)${tree.ccache ? ' and ccache' : ''}; log: ${logPath}`);
			const { bzImage, release } = await makeBzImage(tree, jobs, timeoutMs);
			const built: BuiltKernel = {
				variant: opts.variant,
				line: line.id,
				config,
				key,
				dir,
				bzImage,
				release,
				patches: patches.map((p) => p.name),
				buildSeconds: Math.round((Date.now() - started) / 1000),
				cached: false,
			};
			writeFileSync(metaPath, JSON.stringify(built, null, '\t'));
			progress(`kernel ${name}: built ${release} in ${built.buildSeconds} s`);
			pruneOldBuilds(kernelsDir, config, line.cacheInfix, name);
			return built;
		} catch (e) {
			if (e instanceof LarvalError) throw e;
			await new Promise((r) => log.end(r));
			throw new LarvalError(`kernel build ${name} failed: ${(e as Error).message}\nfull log: ${logPath}`, tailLines(readFileSync(logPath, 'utf8'), 40));
		} finally {
			log.end();
		}
	});
}
