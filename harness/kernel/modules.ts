/** Module name as the kernel knows it: basename, no .ko suffix, '-' as '_'. */
export function moduleName(path: string): string {
	const base = path.split('/').pop() ?? path;
	return base.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/** Parses modules.dep: `path: dep dep ...` per line. */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
	const out = new Map<string, { path: string; deps: string[] }>();
	for (const line of text.split('\n')) {
		const colon = line.indexOf(':');
		if (colon < 0) continue;
		const path = line.slice(0, colon).trim();
		const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
		out.set(moduleName(path), { path, deps });
	}
	return out;
}

/**
 * The modules to insmod, dependencies first, for the wanted names.  Names
 * that are built in are returned separately: the caller decides whether a
 * missing module is fatal.
 */
export function moduleLoadOrder(
	dep: Map<string, { path: string; deps: string[] }>,
	builtin: ReadonlySet<string>,
	wanted: readonly string[],
): { paths: string[]; builtin: string[]; missing: string[] } {
	const paths: string[] = [];
	const seen = new Set<string>();
	const builtinHit: string[] = [];
	const missing: string[] = [];
	const visit = (name: string, stack: string[]): void => {
		if (seen.has(name)) return;
		const entry = dep.get(name);
		if (!entry) {
			if (builtin.has(name)) builtinHit.push(name);
			else missing.push(name);
			seen.add(name);
			return;
		}
		if (stack.includes(name)) throw new Error(`module dependency cycle: ${[...stack, name].join(' -> ')}`);
		for (const d of entry.deps) visit(moduleName(d), [...stack, name]);
		seen.add(name);
		paths.push(entry.path);
	};
	for (const w of wanted) visit(w.replace(/-/g, '_'), []);
	return { paths, builtin: builtinHit, missing };
}
