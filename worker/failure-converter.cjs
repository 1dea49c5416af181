// The failure converter of a worker whose payloads are encrypted (client/codec.ts): error messages and
// stack traces go into a payload, which the codec seals, instead of travelling in clear. CommonJS, so
// the SDK's require() and the workflow bundler both load it, from the sources and from the package.
'use strict';
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
