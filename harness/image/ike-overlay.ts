import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LarvalError } from '../util/errors.js';
import { cacheRoot } from '../util/paths.js';
import type { IkeDaemonName } from '../km/ike-daemon.js';
import { ADDCONN, NSS_TEMPLATE, PLUTO, WHACK } from '../km/libreswan.js';
import { baseImageLibraries, findFirst, hostProgramEntries, strongswanOverlay } from './build.js';
import { type CpioEntry, withParentDirs, writeCpio } from './cpio.js';
import { sharedLibraries } from './shared-libs.js';

/** The overlay a guest that runs @daemon carries (only those guests: each is MBs every other boot would copy for nothing). */
export function ikeDaemonOverlay(daemon: IkeDaemonName): Promise<Buffer> {
	return daemon === 'strongswan' ? strongswanOverlay() : libreswanOverlay();
}

/**
 * Debian's libreswan package, extracted by harness/setup/install-deps.sh
 * (`apt-get download`, `dpkg-deb -x`: it conflicts with strongSwan's
 * packages, so it is never installed on the host), and the empty NSS
 * database made there with certutil.  `current` names the version fetched.
 */
export function libreswanPackageDir(): string {
	return join(cacheRoot(), 'libreswan', 'current');
}

/** The libraries NSS dlopens from its own directory (ldd of pluto does not list them): the software token and its crypto. */
const NSS_DLOPENED = ['libsoftokn3.so', 'libfreeblpriv3.so'];

let libreswanCpio: Promise<Buffer> | undefined;
/**
 * pluto, addconn (which pluto forks to load ipsec.conf) and whack at
 * their Debian paths, the libraries they load and those NSS dlopens, and
 * the NSS database template.
 */
export function libreswanOverlay(): Promise<Buffer> {
	return (libreswanCpio ??= buildLibreswanOverlay());
}

async function buildLibreswanOverlay(): Promise<Buffer> {
	const pkg = libreswanPackageDir();
	const root = join(pkg, 'root');
	const nss = join(pkg, 'nss');
	const binaries = [PLUTO, ADDCONN, WHACK];
	const missing = [...binaries.map((b) => join('root', b)), join('nss', 'cert9.db')].filter((f) => !existsSync(join(pkg, f)));
	if (missing.length) throw new LarvalError(`libreswan is not available (${pkg} lacks ${missing.join(', ')}): run \`make deps\``);
	const libnss = (await sharedLibraries(join(root, PLUTO))).find((l) => l.endsWith('/libnss3.so'));
	if (!libnss) throw new LarvalError('pluto does not link libnss3.so: not the libreswan this harness knows');
	const dlopened = NSS_DLOPENED.map((l) => join(dirname(libnss), l));
	// glibc dlopens libgcc_s for pthread_cancel(); pluto's helper threads are pthreads.
	const libgcc = findFirst(['/lib/x86_64-linux-gnu/libgcc_s.so.1', '/usr/lib/x86_64-linux-gnu/libgcc_s.so.1']);
	const absent = [...dlopened].filter((f) => !existsSync(f));
	if (absent.length) throw new LarvalError(`libreswan's libraries are not installed (missing ${absent.join(', ')}): run \`make deps\``);
	const programs = new Map<string, string>([...binaries.map((b) => [b, join(root, b)] as const), ...[...dlopened, libgcc].map((f) => [f, f] as const)]);
	const template: CpioEntry[] = readdirSync(nss).sort().map((f) => ({ kind: 'file', path: `${NSS_TEMPLATE}/${f}`, mode: 0o600, data: readFileSync(join(nss, f)) }));
	return writeCpio(withParentDirs([...(await hostProgramEntries(programs, await baseImageLibraries())), ...template]));
}
