"""Running a plan: the engine schedules steps, finds or builds their images, runs them in containers
and seals their results in the step cache. Application logic over the edges, under the commands."""
