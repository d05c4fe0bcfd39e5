// Jest resolver: a CommonJS require() of @nestjs/common or @nestjs/core gets
// the ES module instance the test already imported (see setup.ts), as Node's
// require(esm) gives it outside Jest. Needed for @nestjs/throttler and
// @nest-lab/throttler-storage-redis, which are CommonJS: below Node 24.9,
// Jest's loader cannot require() an ES module at all, and a second,
// transpiled copy of Nest would give those packages their own Reflector class
// and decorators, unlike production.
const BRIDGED = { '@nestjs/common': 'common.cjs', '@nestjs/core': 'core.cjs' };

module.exports = (request, options) => {
  const bridge = Object.hasOwn(BRIDGED, request) ? BRIDGED[request] : undefined;
  if (bridge && options.conditions?.includes('require')) return `${__dirname}/${bridge}`;
  return options.defaultResolver(request, options);
};
