"""Codes and names the generator draws from: real SNOMED CT, ICD-10, OPCS-4 and NHS data dictionary
values (checked against their check digits or dictionaries in the tests), and common UK names."""

from __future__ import annotations

# GP measurements recorded in consultations: (SNOMED CT concept, unit, mean, standard deviation).
GP_MEASUREMENTS = (
    ("271649006", "mm[Hg]", 132.0, 18.0),  # systolic blood pressure
    ("271650006", "mm[Hg]", 80.0, 10.0),  # diastolic blood pressure
    ("27113001", "kg", 78.0, 17.0),  # body weight
    ("60621009", "kg/m2", 27.5, 5.5),  # body mass index
    ("1000731000000107", "mmol/L", 5.0, 1.1),  # serum cholesterol
)
GP_UNVALUED = (
    "77176002",  # smoker
    "8517006",  # ex-smoker
    "266919005",  # never smoked tobacco
    "183665006",  # referral to physiotherapy (admin-style coded entry)
)
HBA1C = ("999791000000106", "mmol/mol", 58.0, 14.0)  # HbA1c level, diabetes reviews
RESOLVED = {"DM": "315051004", "AST": "162660004"}  # diabetes resolved, asthma resolved

# Common primary diagnoses of admissions (ICD-10, 4 characters where the code has them). None is on
# the chronic or acute ambulatory care sensitive lists or is a fall injury: those are planted on
# purpose (below and in activity.apc_spells), so the indicators count what was planted and no more.
ADMISSION_DIAGNOSES = (
    "R074", "J189", "A419", "R101", "K802", "K922", "I269", "R55", "A099", "K358",
    "K590", "K566", "R296", "R42", "J22", "M179", "M161", "H251", "K409", "C509",
    "C189", "N189", "I214", "I639", "K219", "R51", "F101", "O800", "Z512", "D649",
)  # fmt: skip

# Acute conditions that should not usually need an admission (NHS Outcomes Framework 3a; the full list
# is ldm/reference/codelists/icd10/acs_acute.csv): the common ones, with their relative weight for
# children (0-15), adults (16-64) and older people (65+). Children are admitted mostly for ear, nose
# and throat infections, gastroenteritis, febrile convulsions and urinary infections; older people for
# urinary infections, cellulitis, dehydration and pneumonia.
ACUTE_ACS_DIAGNOSES = (
    ("J069", 20, 6, 2),  # acute upper respiratory infection
    ("J039", 12, 5, 1),  # acute tonsillitis
    ("J029", 6, 3, 1),  # acute pharyngitis
    ("H669", 8, 1, 0),  # otitis media
    ("K529", 14, 10, 8),  # non-infective gastroenteritis and colitis
    ("E86", 6, 6, 14),  # volume depletion (dehydration)
    ("R560", 12, 0, 0),  # febrile convulsions
    ("R568", 4, 6, 3),  # other convulsions
    ("N390", 8, 22, 34),  # urinary tract infection
    ("N10", 3, 10, 4),  # acute pyelonephritis
    ("L039", 3, 14, 14),  # cellulitis, unspecified
    ("L031", 1, 8, 10),  # cellulitis of other parts of limb
    ("J181", 1, 2, 6),  # lobar pneumonia
    ("K047", 2, 3, 1),  # periapical abscess (dental)
    ("K265", 0, 2, 3),  # chronic or unspecified duodenal ulcer with perforation
)
ACUTE_ACS_AGE_BANDS = (16, 65)  # lower bounds of the adult and older columns above

# Injuries from falls in people aged 65 and over (PHOF C29: an S00-T98 primary diagnosis with a
# W00-W19 external cause in a secondary position), with relative weights: hip fracture leads, then
# head injuries, wrist, upper arm, pelvis and ribs.
FALL_INJURIES = (
    ("S720", 26), ("S721", 8), ("S722", 3),  # fractures of the neck of femur, trochanteric
    ("S000", 6), ("S010", 5), ("S098", 5), ("S060", 4), ("S099", 3),  # head
    ("S525", 7), ("S526", 3),  # distal radius
    ("S422", 6),  # upper end of humerus
    ("S324", 4), ("S325", 4),  # acetabulum, pubis
    ("S224", 3),  # multiple rib fractures
    ("S823", 2), ("S700", 2), ("S008", 2),  # ankle, hip contusion, head
)  # fmt: skip
# Their external cause (4th character 0 = at home, 1 = residential institution): slips and trips on
# the same level, unspecified falls, falls from bed, chair and stairs.
FALL_CAUSES = (
    ("W010", 30), ("W011", 6), ("W190", 22), ("W191", 6), ("W180", 10),
    ("W060", 8), ("W070", 6), ("W100", 12),
)  # fmt: skip
ELECTIVE_PROCEDURES = (
    "H229", "G459", "C751", "W401", "W371", "T202", "J183", "M459", "Q073", "K635",
    "K751", "X403", "A521", "W901", "H251",
)  # fmt: skip
ELECTIVE_METHODS = ("11", "12", "13")
EMERGENCY_METHODS = ("21", "21", "21", "22", "23", "24", "28")
PROVIDERS = ("RR8", "RXF", "RCF")  # Leeds Teaching Hospitals, Mid Yorkshire, Airedale
PROVIDER_SHARE = (0.88, 0.07, 0.05)

# Outpatient treatment function codes (NHS data dictionary).
TREATMENT_FUNCTIONS = (
    "100", "101", "110", "120", "130", "300", "301", "320", "330", "340",
    "361", "400", "410", "430", "502",
)  # fmt: skip
PAEDIATRICS = "420"
# Attended or did not attend: 5 seen on time, 6 late but seen, 3 did not attend,
# 2 cancelled by patient, 4 cancelled by hospital.
ATTENDED, DID_NOT_ATTEND = ("5", "6"), "3"
CANCELLED = ("2", "4")

# ECDS: chief complaints, acuity and discharge destinations (SNOMED CT).
AE_CHIEF_COMPLAINTS = (
    "29857009", "267036007", "21522001", "25064002", "386661006", "422587007",
    "125605004", "162397003", "404684003", "271807003", "22253000", "43364001",
)  # fmt: skip
AE_ACUITY = ("1077251000000100", "1077241000000103", "1064901000000108", "1064911000000105",
             "1064891000000107")  # fmt: skip
AE_ACUITY_SHARE = (0.02, 0.15, 0.45, 0.33, 0.05)
AE_DESTINATIONS = ("306689006", "306706006", "19712007")  # home, admitted to ward, transferred

# Community services (CSDS-style team types) and contact modes.
COMMUNITY_SERVICES = (
    ("DN", "District nursing", 80),
    ("PT", "Physiotherapy", 18),
    ("POD", "Podiatry", 50),
    ("HV", "Health visiting", 0),
    ("SN", "School nursing", 5),
    ("SLT", "Speech and language therapy", 3),
    ("CMH", "Community mental health", 18),
)
CONTACT_MODES = ("F2F", "TEL", "VID")
CONTACT_MODE_SHARE = (0.7, 0.25, 0.05)

# NHS ethnic category codes with rough Leeds shares.
ETHNIC_CATEGORIES = ("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P",
                     "R", "S", "Z")  # fmt: skip
ETHNIC_SHARE = (0.76, 0.01, 0.03, 0.01, 0.005, 0.01, 0.005, 0.02, 0.04, 0.005, 0.01, 0.01,
                0.02, 0.005, 0.01, 0.01, 0.04)  # fmt: skip

FEMALE_FORENAMES = (
    "OLIVIA", "AMELIA", "ISLA", "AVA", "MIA", "SOPHIA", "GRACE", "LILY", "FREYA", "EMILY",
    "ELLA", "POPPY", "EVIE", "CHARLOTTE", "ISABELLA", "SOPHIE", "JESSICA", "HANNAH", "SARAH",
    "EMMA", "LAURA", "REBECCA", "RACHEL", "CLAIRE", "NICOLA", "LISA", "JULIE", "KAREN", "SUSAN",
    "MARGARET", "PATRICIA", "ELIZABETH", "MARY", "JEAN", "JOAN", "DOROTHY", "BARBARA", "AYESHA",
    "FATIMA", "MARYAM", "ZAINAB", "AMINA", "PRIYA", "ANNA", "KATIE", "CATHERINE", "HELEN",
    "JACQUELINE", "SHARON", "DEBORAH",
)  # fmt: skip
MALE_FORENAMES = (
    "OLIVER", "GEORGE", "NOAH", "ARTHUR", "HARRY", "LEO", "MUHAMMAD", "JACK", "CHARLIE",
    "OSCAR", "JACOB", "HENRY", "THOMAS", "WILLIAM", "JAMES", "DANIEL", "JOSHUA", "SAMUEL",
    "MATTHEW", "ADAM", "MICHAEL", "DAVID", "JOHN", "PAUL", "MARK", "ANDREW", "RICHARD", "PETER",
    "STEPHEN", "CHRISTOPHER", "ROBERT", "ANTHONY", "KEVIN", "GARY", "IAN", "BRIAN", "KEITH",
    "ALAN", "RAYMOND", "KENNETH", "MOHAMMED", "AHMED", "ALI", "HASSAN", "IMRAN", "BILAL",
    "RYAN", "LIAM", "CONNOR", "NATHAN",
)  # fmt: skip
SURNAMES = (
    "SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES", "ROBINSON",
    "WRIGHT", "THOMPSON", "EVANS", "WALKER", "WHITE", "ROBERTS", "GREEN", "HALL", "WOOD",
    "JACKSON", "CLARKE", "PATEL", "KHAN", "HUSSAIN", "ALI", "AHMED", "BEGUM", "SHAH", "AKHTAR",
    "HOLMES", "SHAW", "LEE", "HARRISON", "MARTIN", "CARTER", "MITCHELL", "TURNER", "PARKER",
    "COOPER", "HILL", "WARD", "MORRIS", "KING", "BAKER", "MOORE", "WATSON", "BARKER", "ATKINSON",
    "BROOK", "HAIGH", "SUTCLIFFE", "ACKROYD", "FIRTH", "BOOTH", "HIRST", "DYSON", "PICKERING",
    "KELLY", "MURPHY", "O'BRIEN", "NOWAK", "KOWALSKI", "SINGH", "KAUR", "MAHMOOD", "IQBAL",
    "RAHMAN", "OKAFOR", "MENSAH", "CHEN", "WANG", "NGUYEN", "SMYTH-JONES", "FOSTER", "GRAY",
    "HUGHES", "EDWARDS", "LEWIS", "YOUNG", "SCOTT", "ADAMS", "BAILEY", "BELL", "RICHARDSON",
    "COX", "HOWARD", "BUTLER", "BARNES", "FISHER", "HENDERSON", "SIMPSON", "MARSHALL", "ELLIS",
    "STEVENSON", "FLETCHER", "HOLDSWORTH", "BRAITHWAITE", "ILLINGWORTH", "PRIESTLEY", "WHITELEY",
)  # fmt: skip
