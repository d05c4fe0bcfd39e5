// See resolver.cjs.
module.exports = globalThis[Symbol.for('lineage.test.nest-esm')].common;
