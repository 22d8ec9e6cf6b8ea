from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class UsageOut(BaseModel):
    feature: str
    used: int
    limit: int = Field(description="-1: unlimited; 0: the feature is off for this plan.")
    reset_date: datetime | None
