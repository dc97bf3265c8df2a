/** Keeps the architecture's dependency direction (style.md rule 2): checked in CI by `npm run depcheck`. */
const layer = (name) => `^src/${name}/`;
module.exports = {
  forbidden: [
    { name: 'pki-no-edges', severity: 'error', comment: 'pki never imports HTTP, MQTT, store or flows', from: { path: layer('pki') }, to: { path: '^src/(api|gateway|cli|provisioning|registry|store|events|app|device)/' } },
    { name: 'registry-no-edges', severity: 'error', comment: 'registry never imports HTTP, MQTT or flows', from: { path: layer('registry') }, to: { path: '^src/(api|gateway|cli|provisioning|events|app|device|pki)/' } },
    { name: 'pure-policy', severity: 'error', comment: 'policy is pure', from: { path: layer('policy') }, to: { path: '^src/(?!policy/|errors/)' } },
    { name: 'pure-templates', severity: 'error', comment: 'templates are pure', from: { path: layer('templates') }, to: { path: '^src/(?!templates/|errors/)' } },
    { name: 'store-no-business', severity: 'error', comment: 'store holds no business rules', from: { path: layer('store') }, to: { path: '^src/(?!store/|errors/)' } },
    { name: 'provisioning-no-edges', severity: 'error', comment: 'flows never import the API, gateway or CLI', from: { path: layer('provisioning') }, to: { path: '^src/(api|gateway|cli|app)/' } },
    { name: 'device-no-server', severity: 'error', comment: 'the device SDK talks over the network only', from: { path: layer('device') }, to: { path: '^src/(api|gateway|provisioning|registry|store|app|events)/' } },
    { name: 'only-through-index', severity: 'error', comment: 'other folders import a folder only through its index.ts', from: { path: '^src/([^/]+)/' }, to: { path: '^src/([^/]+)/.+', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] } },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
    tsPreCompilationDeps: true,
  },
};
