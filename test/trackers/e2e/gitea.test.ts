/** Gitea end to end, through the real CLI: the shared Gitea/Forgejo scenario, merged with a merge commit. */
import { giteaEndToEnd } from './gitea-scenario.ts';

giteaEndToEnd('gitea', 'merge');
