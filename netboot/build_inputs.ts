// build-netboot's first step: every input it needs is there (kernel, modules, a static busybox),
// or one error that says how to get it.

import { exists, run } from "./build_exec.ts";
import type { BuildOptions } from "./build_options.ts";

const FETCH_HINT = "get one with: bash scripts/fetch_kernel.sh  (then pass the --kernel and " +
  "--modules it prints)";

export async function checkInputs(o: BuildOptions) {
  if (!(await exists(o.kernel))) {
    throw new Error(`Cannot find a kernel at "${o.kernel}": ${FETCH_HINT}`);
  }
  if (!(await exists(o.modules))) {
    throw new Error(`Cannot find kernel modules at "${o.modules}": ${FETCH_HINT}`);
  }
  if (!(await exists(o.busybox))) {
    throw new Error(
      `Cannot find busybox at "${o.busybox}": apt-get install busybox-static (or pass --busybox)`,
    );
  }
  const ldd = await run("ldd", [o.busybox]);
  if (ldd.ok && /=>/.test(ldd.stdout)) {
    throw new Error(
      `Cannot use "${o.busybox}": it is dynamically linked; install busybox-static (/bin/busybox)`,
    );
  }
}
