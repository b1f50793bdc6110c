/** Forgejo end to end, through the real CLI: the shared Gitea/Forgejo scenario, merged by rebasing. */
import { giteaEndToEnd } from './gitea-scenario.ts';

giteaEndToEnd('forgejo', 'rebase');
