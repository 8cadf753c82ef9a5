import assert from "node:assert/strict";
import {
  graphFromDirectDeps,
  moduleNameOf,
  parseModulesDep,
  renderModulesAlias,
  renderModulesDep,
  resolveModules,
} from "./modules_dep.ts";

const fixture = await Deno.readTextFile(new URL("./testdata/modules.dep", import.meta.url));

Deno.test("moduleNameOf strips folders and .ko suffixes and maps - to _", () => {
  assert.equal(moduleNameOf("kernel/drivers/nvme/host/nvme-core.ko"), "nvme_core");
  assert.equal(moduleNameOf("kernel/drivers/net/virtio_net.ko.xz"), "virtio_net");
});

Deno.test("resolveModules picks names with all their dependencies, reports the rest", () => {
  const graph = parseModulesDep(fixture);
  const r = resolveModules(graph, ["virtio_net", "virtio-pci", "nvme", "sd_mod", "r8169"]);
  assert.deepEqual(r.paths, [
    "kernel/drivers/net/ethernet/realtek/r8169.ko",
    "kernel/drivers/net/net_failover.ko",
    "kernel/drivers/net/phy/libphy.ko",
    "kernel/drivers/net/phy/mdio_devres.ko",
    "kernel/drivers/net/virtio_net.ko",
    "kernel/drivers/nvme/host/nvme-core.ko",
    "kernel/drivers/nvme/host/nvme.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/net/core/failover.ko",
  ]);
  assert.deepEqual(r.missing, ["sd_mod"]);
});

Deno.test("resolveModules takes whole folders; renderModulesDep writes the subset back", () => {
  const graph = parseModulesDep(fixture);
  const r = resolveModules(graph, ["kernel/drivers/net/ethernet/", "kernel/sound/"]);
  assert.deepEqual(r.missing, ["kernel/sound/"]);
  assert.equal(
    renderModulesDep(graph, r.paths),
    [
      "kernel/drivers/net/ethernet/intel/e1000/e1000.ko:",
      "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko:",
      "kernel/drivers/net/ethernet/realtek/r8169.ko: kernel/drivers/net/phy/mdio_devres.ko " +
      "kernel/drivers/net/phy/libphy.ko",
      "kernel/drivers/net/phy/libphy.ko:",
      "kernel/drivers/net/phy/mdio_devres.ko: kernel/drivers/net/phy/libphy.ko",
      "",
    ].join("\n"),
  );
});

Deno.test("parseModulesDep names the bad line", () => {
  assert.throws(
    () => parseModulesDep("a.ko: b.ko\nnot a module line\n", "x/modules.dep"),
    /Cannot parse line 2 of "x\/modules.dep": expected "<module>.ko: <deps>", got "not a module line"/,
  );
});

Deno.test("resolveModules fails clearly when modules.dep lists a dependency it lacks", () => {
  const graph = parseModulesDep("a.ko: gone.ko\n");
  assert.throws(() => resolveModules(graph, ["a"]), /needs "gone.ko", which is not listed/);
});

Deno.test("graphFromDirectDeps rebuilds the fixture's transitive modules.dep from depends=", () => {
  const direct = new Map<string, string[]>([
    ["kernel/drivers/net/virtio_net.ko", ["virtio", "virtio_ring", "net_failover"]],
    ["kernel/drivers/net/net_failover.ko", ["failover"]],
    ["kernel/net/core/failover.ko", []],
    ["kernel/drivers/virtio/virtio.ko", ["virtio_ring"]],
    ["kernel/drivers/virtio/virtio_ring.ko", []],
    ["kernel/drivers/nvme/host/nvme.ko", ["nvme-core"]],
    ["kernel/drivers/nvme/host/nvme-core.ko", []],
  ]);
  const graph = graphFromDirectDeps(direct);
  const want = parseModulesDep(fixture);
  for (const [path, deps] of graph) {
    assert.deepEqual(new Set(deps), new Set(want.get(path)), path);
    // Each module comes before what it needs: loading from the end works.
    deps.forEach((d, i) => {
      for (const later of graph.get(d)!) assert.ok(deps.indexOf(later) > i, `${d} in ${path}`);
    });
  }
  assert.throws(
    () => graphFromDirectDeps(new Map([["a.ko", ["b"]]])),
    /Cannot resolve dependency "b" of "a.ko": no module of that name/,
  );
  assert.throws(
    () => graphFromDirectDeps(new Map([["a.ko", ["b"]], ["b.ko", ["a"]]])),
    /depends on itself/,
  );
});

Deno.test("renderModulesAlias writes one alias line per pattern", () => {
  const text = renderModulesAlias(
    new Map([["kernel/drivers/net/virtio_net.ko", ["virtio:d00000001v*"]]]),
  );
  assert.equal(text, "alias virtio:d00000001v* virtio_net\n");
});
