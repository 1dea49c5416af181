// The workflow bundle's entry point: every workflow the worker registers is exported here.
export { deployWorkflow, refreshMirrorWorkflow, rollbackWorkflow } from './deploy.js';
export { scheduledDeployWorkflow } from './scheduled.js';
