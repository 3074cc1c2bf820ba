/*
 * The coordination protocol of `coordinator`, for spin: one shared wakeup task claimed
 * under a fenced lease and decided once, then rolled out in three canary waves
 * (explorer -> early adopter -> general) by a leased driver whose every step is fenced
 * by its token and by the version of the rollout it was computed from.
 *
 * Three occurrences, each one process (its poll loop, its driver and the decide action
 * it starts); with RESTART, a second incarnation of one of them as a fourth. Every
 * database statement is one atomic step, conditional exactly as the real UPDATE is
 * (WHERE fencing_token = :mine, WHERE version = :based_on, ...); a read is a step of its
 * own, and what an occurrence computed from it is kept in its locals until it writes,
 * so what it writes may have been computed from a stale view.
 *
 * Faults. spin explores every schedule, so any occurrence may take no step while the
 * others take any number of steps: that is a pause (SIGSTOP), and if it never steps
 * again, a crash (kill -9). What makes either dangerous is that the stalled holder's
 * lease runs out meanwhile, so another takes over, and (a pause) the stalled one then
 * resumes with what it read before (SIGCONT). The World process lets a held lease
 * expire at any moment, up to MAXEXPIRE times in a run: each expiry is one pause or
 * crash of the holder outlasting its lease. An operator may record a fleet-wide
 * emergency stop at any moment the rollout runs.
 *
 * docs/model/README.md maps every variable here to its column and code, and says how
 * to run the check. Switches (spin -D...):
 *   NO_STATE_FENCING     apply_step without "AND version = :based_on" (a driver stepping
 *                        from a stale view): spin finds a wave signalled twice.
 *   NO_DECISION_FENCING  record_decision without "AND fencing_token = :mine": spin finds
 *                        a decision recorded under a superseded claim (this turns RESTART
 *                        on: claimed_by is the occurrence id, so only a second
 *                        incarnation of the same id gets past the rest of the WHERE).
 *   WRITTEN_ONCE_ONLY    drop the assertion that the decision was made under the claim
 *                        in force, keeping "written once" (with NO_DECISION_FENCING it
 *                        shows that "status = ACTIVE" alone keeps the decision written once).
 *   STRICT_EMERGENCY     the stop may come at any moment (also while the decision is in
 *                        flight), each emergency loop sees it some time later, and the
 *                        stronger property "no wave is signalled once the stop is
 *                        recorded" is checked.
 *   STOP_KEEPS_OPEN_TASKS  the code before 0.6: the stop does not fail the open shared
 *                        task, so with STRICT_EMERGENCY spin finds a decision in flight
 *                        recorded after the stop and its explorer wave signalled.
 *   RESTART              one occurrence may start again as a new incarnation (same id)
 *                        while the old one may still run (superseded, not yet aware).
 *   MAXEXPIRE            how many lease expiries (pauses or crashes that outlast a lease)
 *                        one run may have; default 2.
 *   MAXENGINEFAIL        how many decision engine calls may fail; default 1.
 */

#ifdef NO_DECISION_FENCING
#ifndef RESTART
#define RESTART
#endif
#endif

#ifndef MAXEXPIRE
#define MAXEXPIRE 2
#endif
#ifndef MAXENGINEFAIL
#define MAXENGINEFAIL 1
#endif
#ifdef RESTART
#define MAXRESTART 1
#else
#define MAXRESTART 0
#endif

/* The fences the switches remove. */
#ifdef NO_DECISION_FENCING
#define DECISION_FENCE true
#else
#define DECISION_FENCE (task_token == mytok)
#endif
#ifdef NO_STATE_FENCING
#define STATE_FENCE true
#else
#define STATE_FENCE (ro_version == c_based)
#endif

#define NONE   255        /* no holder */

/* tasks.status */
#define T_PENDING   0
#define T_ACTIVE    1
#define T_COMPLETED 2
#define T_FAILED    3

/* rollouts.status (R_NONE: no row yet) */
#define R_NONE      0
#define R_RUNNING   1
#define R_COMPLETED 2
#define R_ABORTED   3

/* waves.status */
#define W_PENDING   0
#define W_SIGNALLED 1
#define W_HEALTHY   2
#define W_FAILED    3
#define W_SKIPPED   4
#define NOCHG       7     /* in a computed change: this wave is not written */

/* occurrences.state, as far as the gate looks */
#define M_STARTING  0
#define M_WORK      1
#define M_SHUTDOWN  2

/* ---- the database -------------------------------------------------------------------- */

/* tasks: the one shared wakeup task (agent_occurrence_id = '__shared__') */
byte task_status = T_PENDING;
byte task_holder = NONE;       /* claimed_by */
byte task_token = 0;           /* fencing_token */
bool task_expired = 0;         /* lease_expires_at < now() */

/* rollouts: the rollout the decision starts (rollout_id = task_id) */
byte ro_status = R_NONE;
byte ro_version = 0;           /* version */
byte ro_decider = NONE;        /* decided_by: the explorer; the plan follows from it */
byte drv_holder = NONE;        /* driver_id */
byte drv_token = 0;            /* driver_token */
bool drv_expired = 0;          /* driver_lease_expires_at <= now(): the lease is free */

/* waves: status, and whether signalled_at is set */
byte wave[3];
bool sigat[3];

/* occurrences: the state of the latest incarnation of each occurrence id */
byte mstate[3];

/* commands: a fleet-wide emergency stop, accepted */
bool estop = 0;

/* ---- the world ----------------------------------------------------------------------- */

byte slot_oid[4];              /* the occurrence id each process slot runs as */
bool stopped[4];               /* that process's emergency loop has seen the stop */
byte expiries = 0;
byte engine_failures = 0;
byte restarts = 0;

/* ---- ghosts: what the properties are stated over (no code counterpart) ------------------ */

byte decisions = 0;            /* successful record_decision writes */
byte signals[3];               /* writes that set a wave to signalled */
bool passed[3];                /* the wave's gate passed (it was written healthy) */
bool aborted = 0;              /* the rollout was written aborted */
bool ro_at_stop = 0;           /* a rollout was in progress when the stop was recorded */

/* The plan (coordinator/policy/groups.py): the decider is the explorer; of the others, in
 * natural order, the first max(1, int(3 * 0.3)) = 1 is the early adopter, the rest general. */
#define MEMBER(k)  ((k) == 0 -> ro_decider : \
                    ((k) == 1 -> (ro_decider == 0 -> 1 : 0) : (ro_decider == 2 -> 1 : 2)))
#define WAVE_OF(o) ((o) == ro_decider -> 0 : ((o) == MEMBER(1) -> 1 : 2))
#define SETTLED(s) ((s) == W_HEALTHY || (s) == W_FAILED || (s) == W_SKIPPED)
#define FINISHED(s) ((s) == R_COMPLETED || (s) == R_ABORTED)
#define CLAIMABLE  (task_status == T_PENDING || (task_status == T_ACTIVE && task_expired))
#define DRV_FREE   (drv_holder == NONE || drv_expired)
#define HOLDS      (held != 0 && drv_holder == me && drv_token == held && ro_status == R_RUNNING)
#define MAY_ENTER  (ro_status != R_NONE && mstate[me] == M_STARTING && sigat[WAVE_OF(me)])

/* Write wave k of a change (persistence/deciding.py: write_wave_progress), checking the
 * wave properties at the moment a wave is signalled. */
inline write_wave(k) {
  if
  :: cw[k] == W_SIGNALLED ->
     assert(signals[k] == 0);              /* nothing signalled twice */
     assert(k == 0 || passed[k - 1]);      /* waves in order */
     assert(!aborted);                     /* an aborted rollout signals nothing more */
#ifdef STRICT_EMERGENCY
     assert(!estop);                       /* nothing signalled once the stop is recorded */
#else
     assert(!ro_at_stop);                  /* a rollout the stop found signals nothing more */
#endif
     signals[k]++;
     sigat[k] = 1;
     wave[k] = cw[k];
     printf("      wave %d signalled (%d time(s))\n", k, signals[k])
  :: cw[k] == W_HEALTHY -> passed[k] = 1; wave[k] = cw[k];
     printf("      wave %d healthy (its gate passed)\n", k)
  :: cw[k] == W_FAILED -> wave[k] = cw[k]; printf("      wave %d failed its gate\n", k)
  :: cw[k] == W_SKIPPED -> wave[k] = cw[k]; printf("      wave %d skipped\n", k)
  :: cw[k] == NOCHG -> skip
  fi
}

/* One occurrence incarnation: its poll loop (coordinator/poll_loop.py) with its driver
 * (coordinator/driver.py) and the decide action it starts (coordinator/decider.py). */
proctype Occ(byte slot)
{
  byte me = slot_oid[slot];
  byte mytok = 0;        /* Claim.fencing_token, while deciding */
  byte held = 0;         /* RolloutDriver._held[rollout]: the driver token; 0 = none */
  /* The step computed from the last view (a RolloutChange), kept until it is written: */
  bool c_have = 0;       /* step_rollout returned a change */
  bool c_acquire = 0;    /* not holding, and the view showed the lease free */
  byte c_based = 0;      /* change.based_on: the version the view showed */
  byte c_status = 0;     /* change.status */
  bool c_fail = 0;       /* change.fail_task */
  byte cw[3];            /* change.waves; NOCHG where unchanged */
  byte k = 0;

  {
end_poll:
    do
    /* ---- claim and decide (member_policy: CLAIM; Decider.decide) ---------------------- */
    :: atomic {
         /* persistence/shared_tasks.py: claim_task, one conditional UPDATE */
         /* Which occurrence claims first does not matter (they run the same code and
          * the plan tells them apart only by their order), so occurrence 0 does. */
         CLAIMABLE && (task_token > 0 || me == 0) ->
         task_status = T_ACTIVE; task_holder = me; task_token++; task_expired = 0;
         mytok = task_token;
         printf("occ %d [slot %d] claims the task: fencing_token %d\n", me, slot, mytok)
       };
       /* Discovery and the engine call take this gap; the claim is renewed meanwhile
        * (Decider._renewing) unless the decider stalls: then it may expire. */
       if
       :: atomic {
            /* shared_tasks.py: record_decision: _fenced_task_update (WHERE status = ACTIVE
             * AND claimed_by = me AND fencing_token = mine), then the insert of the
             * rollout and its waves, in one transaction */
            if
            :: task_status == T_ACTIVE && task_holder == me && DECISION_FENCE ->
               printf("occ %d [slot %d] records the decision with token %d (the task's: %d)\n",
                      me, slot, mytok, task_token);
               assert(ro_status == R_NONE);      /* rollouts.rollout_id is the task id */
               decisions++;
               assert(decisions == 1);           /* one decision per shared task, */
#ifndef WRITTEN_ONCE_ONLY
               assert(mytok == task_token);      /* made under the claim in force */
#endif
               task_status = T_COMPLETED; task_expired = 0;
               ro_status = R_RUNNING; ro_decider = me;
               /* the decider holds the new rollout's driver lease (driver_token = 1) and
                * its runtime adopts it (RolloutDriver.adopt) */
               drv_holder = me; drv_token = 1; held = 1
            :: !(task_status == T_ACTIVE && task_holder == me && DECISION_FENCE) ->
               printf("occ %d [slot %d] decision refused: token %d is stale\n", me, slot, mytok)
            fi;
            mytok = 0
          }
       :: atomic {
            /* the engine failed: shared_tasks.py release_claim, fenced the same way */
            engine_failures < MAXENGINEFAIL -> engine_failures++;
            if
            :: task_status == T_ACTIVE && task_holder == me && task_token == mytok ->
               task_status = T_PENDING; task_holder = NONE;
               printf("occ %d [slot %d] engine failed: task released\n", me, slot)
            :: !(task_status == T_ACTIVE && task_holder == me && task_token == mytok) -> skip
            fi;
            mytok = 0
          }
       fi

    /* ---- drive the rollout: one RolloutDriver.drive ----------------------------------- */
    :: atomic {
         /* Read the fleet view (fleet_reads.py: fleet_view, one read transaction) and
          * compute the step from it (rollout_machine.step_rollout: pure, on the view). */
         ro_status == R_RUNNING && (held != 0 || DRV_FREE) ->
         if
         :: held != 0 && !(drv_holder == me && drv_token == held) -> held = 0   /* taken over */
         :: held == 0 || (drv_holder == me && drv_token == held) -> skip
         fi;
         c_acquire = (held == 0 && DRV_FREE);
         if
         :: held == 0 && !c_acquire -> skip             /* someone else holds the lease */
         :: held != 0 || c_acquire ->
            c_based = ro_version; c_status = R_RUNNING;
            cw[0] = NOCHG; cw[1] = NOCHG; cw[2] = NOCHG;
            k = 0;
            do
            :: k == 3 -> c_status = R_COMPLETED; c_have = 1; break
            :: k < 3 && SETTLED(wave[k]) -> k++
            :: k < 3 && wave[k] == W_PENDING ->
               cw[k] = W_SIGNALLED; c_have = 1; break       /* then soak */
            :: k < 3 && wave[k] == W_SIGNALLED && mstate[MEMBER(k)] == M_WORK ->
               cw[k] = W_HEALTHY; c_have = 1; k++           /* the gate passed: go on */
            :: k < 3 && wave[k] == W_SIGNALLED && mstate[MEMBER(k)] != M_WORK ->
               break                                        /* soaking, or gate: wait */
            :: k < 3 && wave[k] == W_SIGNALLED ->
               /* the gate failed: timed out, or the member's heartbeat went stale */
               cw[k] = W_FAILED; c_have = 1;
               if
               :: k == 2 -> k++           /* the last wave failing is logged; completes */
               :: k < 2 ->
                  k++;
                  do
                  :: k < 3 -> cw[k] = W_SKIPPED; k++
                  :: k == 3 -> break
                  od;
                  c_status = R_ABORTED; c_fail = (cw[0] == W_FAILED); break
               fi
            od;
            k = 0;
            if
            :: c_have && c_acquire ->
               printf("occ %d [slot %d] reads the view at version %d: the lease is free; a step to take\n",
                      me, slot, c_based)
            :: c_have && !c_acquire ->
               printf("occ %d [slot %d] reads the view at version %d: a step to take\n",
                      me, slot, c_based)
            :: !c_have -> skip
            fi
         fi;
         if
         :: !c_have && HOLDS ->
            drv_expired = 0         /* nothing to step: renew_driver (fenced by token) */
         :: !c_have && held != 0 && !HOLDS -> held = 0
         :: c_have || held == 0 -> skip
         fi;
         if
         :: !c_have -> c_acquire = 0; c_based = 0; c_status = 0;
                       cw[0] = 0; cw[1] = 0; cw[2] = 0
         :: c_have -> skip
         fi
       };
       if
       :: c_acquire ->
          atomic {
            /* rollouts.py: acquire_driver, one conditional UPDATE (no version in it) */
            if
            :: ro_status == R_RUNNING && DRV_FREE ->
               drv_holder = me; drv_token++; drv_expired = 0; held = drv_token;
               printf("occ %d [slot %d] acquires the driver lease: token %d\n", me, slot, held)
            :: !(ro_status == R_RUNNING && DRV_FREE) -> c_have = 0   /* None: not ours */
            fi;
            c_acquire = 0
          }
       :: !c_acquire -> skip
       fi;
       if
       :: c_have ->
          atomic {
            /* rollouts.py: apply_step: UPDATE ... WHERE _held_by(holder, token) [driver_id,
             * driver_token, status = running] AND version = :based_on */
            if
            :: HOLDS && STATE_FENCE ->
               printf("occ %d [slot %d] applies its step (token %d), computed at version %d, to version %d\n",
                      me, slot, held, c_based, ro_version);
               write_wave(0); write_wave(1); write_wave(2);
               ro_status = c_status; ro_version++;
               if
               :: FINISHED(c_status) ->
                  drv_holder = NONE; drv_expired = 0; held = 0;   /* the lease released */
                  aborted = (c_status == R_ABORTED)
               :: !FINISHED(c_status) -> drv_expired = 0          /* renewed with the step */
               fi;
               if
               :: c_fail -> task_status = T_FAILED
               :: !c_fail -> skip
               fi
            :: !HOLDS -> held = 0;                 /* StaleFencingToken: the lease is lost */
               printf("occ %d [slot %d] step refused: StaleFencingToken\n", me, slot)
            :: HOLDS && !STATE_FENCE ->            /* StaleRolloutView: recompute next poll */
               printf("occ %d [slot %d] step refused: StaleRolloutView (computed at %d, now %d)\n",
                      me, slot, c_based, ro_version)
            fi;
            c_have = 0; c_based = 0; c_status = 0; c_fail = 0;
            cw[0] = 0; cw[1] = 0; cw[2] = 0
          }
       :: !c_have -> skip
       fi

    /* ---- the member: its wave was signalled (member_policy: ENTER_WORK) ---------------- */
    :: atomic {
         MAY_ENTER ->
         /* nothing in wave k+1 acts before wave k passed its gate */
         assert(WAVE_OF(me) == 0 || passed[WAVE_OF(me) - 1]);
         mstate[me] = M_WORK;       /* hooks.on_work, then Member.set_state(WORK) */
         printf("occ %d [slot %d] enters work (wave %d)\n", me, slot, WAVE_OF(me))
       }
    od
  } unless {
    atomic {
      /* The emergency loop saw the stop: acknowledge and leave, releasing every lease
       * (rollouts.py release_driver: WHERE driver_id = me AND driver_token = held). The
       * poll loop and the decide action are cancelled wherever they are. */
      stopped[slot] ->
      if
      :: held != 0 && drv_holder == me && drv_token == held ->
         drv_holder = NONE; drv_expired = 0
      :: !(held != 0 && drv_holder == me && drv_token == held) -> skip
      fi;
      mstate[me] = M_SHUTDOWN; held = 0; mytok = 0;
      c_have = 0; c_acquire = 0; c_based = 0; c_status = 0; c_fail = 0;
      cw[0] = 0; cw[1] = 0; cw[2] = 0; k = 0
    }
  }
}

#define NOTICE(s) :: atomic { estop && !stopped[s] && (s < 3 || restarts > 0) -> stopped[s] = 1; \
                                printf("-- [slot %d] sees the emergency stop\n", s) }
#define RESTART_OF(o) :: atomic { restarts < MAXRESTART && \
                                  ((task_status == T_ACTIVE && task_expired && task_holder == o) || \
                                   (ro_status == R_RUNNING && drv_expired && drv_holder == o)) -> \
                                  restarts++; slot_oid[3] = o; \
                                  mstate[o] = M_STARTING; run Occ(3); \
                                  printf("-- occ %d restarts as a new incarnation [slot 3]\n", o) }

/* Time, faults and the operator. */
active proctype World()
{
  byte k = 0;
  atomic {
    slot_oid[0] = 0; slot_oid[1] = 1; slot_oid[2] = 2;
    run Occ(0); run Occ(1); run Occ(2)
  };
end_world:
  do
  /* A held lease runs out: its holder stalled past it (paused, or dead). */
  :: atomic { expiries < MAXEXPIRE && task_status == T_ACTIVE && !task_expired ->
              expiries++; task_expired = 1;
              printf("-- the claim of occ %d expires (token %d)\n", task_holder, task_token) }
  :: atomic { expiries < MAXEXPIRE && ro_status == R_RUNNING && drv_holder != NONE &&
              !drv_expired -> expiries++; drv_expired = 1;
              printf("-- the driver lease of occ %d expires (token %d)\n", drv_holder, drv_token) }
#ifdef RESTART
  /* An occurrence whose lease ran out (it stalled or died) is started again by its
   * supervisor as a new incarnation with the same id (a new membership row); the old
   * process, if it was only paused, resumes not knowing yet that it is superseded. */
  RESTART_OF(0) RESTART_OF(1) RESTART_OF(2)
#endif
  /* An operator's fleet-wide emergency stop, verified and recorded in one transaction:
   * persistence/emergency.py _settle -> _abort_in_progress -> apply_rollout_edit with
   * schemas/policy/rollout_control.py abort_edit (unsettled waves skipped, the lease
   * freed, the task FAILED, the version bumped), and schemas/policy/emergency.py
   * fleet_stop_cancels (an open shared task FAILED). */
  :: atomic {
#ifdef STRICT_EMERGENCY
       !estop ->
#else
       !estop && ro_status == R_RUNNING ->
#endif
       estop = 1;
       printf("-- emergency stop recorded\n");
       if
       :: ro_status == R_RUNNING ->
          ro_at_stop = 1;
          k = 0;
          do
          :: k < 3 && (wave[k] == W_PENDING || wave[k] == W_SIGNALLED) ->
             wave[k] = W_SKIPPED; k++
          :: k < 3 && !(wave[k] == W_PENDING || wave[k] == W_SIGNALLED) -> k++
          :: k == 3 -> break
          od;
          k = 0;
          ro_status = R_ABORTED; aborted = 1; ro_version++;
          drv_holder = NONE; drv_expired = 0;
          task_status = T_FAILED
       :: ro_status != R_RUNNING -> skip
       fi;
#ifndef STOP_KEEPS_OPEN_TASKS
       /* The stop also fails the open shared task (fleet_stop_cancels), so a decision
        * in flight is refused by record_decision's "status = ACTIVE". */
       if
       :: task_status == T_PENDING || task_status == T_ACTIVE -> task_status = T_FAILED
       :: !(task_status == T_PENDING || task_status == T_ACTIVE) -> skip
       fi
#endif
     }
#ifdef STRICT_EMERGENCY
  /* Each occurrence's emergency loop sees the stop, some time after it is recorded. */
  NOTICE(0) NOTICE(1) NOTICE(2) NOTICE(3)
#endif
  /* Nothing else can happen: the run ended decided and finished, or stopped. */
  :: timeout ->
     assert(estop || (decisions == 1 && FINISHED(ro_status)));
     break
  od
}
