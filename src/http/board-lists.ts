/**
 * What the dashboard's board reads when it loads, in one place for the board
 * (web/src/pages/board.tsx) and for the benchmark that times its first load:
 * every page of the tasks still in the pipeline (`open`), and one page of the
 * newest of each finished column. A history of finished tasks costs it
 * nothing: those lists are read through indexes, newest first, a page each.
 */

/** The tasks not at done or cancelled: every page is read. */
export const BOARD_OPEN_TASKS = '/api/tasks?open=true';

/** How many of each finished column the board shows (the newest). */
export const BOARD_FINISHED_SHOWN = 100;

/** The finished columns: one page each, newest first. */
export const BOARD_FINISHED_TASKS: readonly string[] = ['done', 'cancelled'].map(
  (stage) => `/api/tasks?stage=${stage}&order=newest&limit=${BOARD_FINISHED_SHOWN}`,
);
