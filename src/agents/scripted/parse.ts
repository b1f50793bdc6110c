/** The scripted agent prints the contract's stream-json, like any command agent. */
export { createCommandParser as createScriptedParser, isStreamJsonResultLine } from '../command/parse.ts';
